import { RemovalPolicy, SecretValue, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { NamedSecret } from './named-secret';

export interface ClusterPkiProps {
  /** Secret names are `<clusterName>/pki/root` and `<clusterName>/pki/intermediate`. */
  readonly clusterName: string;
  readonly encryptionKey: kms.IKey;
  /**
   * A role that may read and write the CA secrets besides the CA function.
   * @default - none
   */
  readonly breakGlassRoleArn?: string;
}

/**
 * Where the cluster CA lives: the root pair and the issuing (intermediate)
 * pair, each in its own secret, empty (`{}`) until the CA step of the
 * bootstrap flow makes them. Issuers read the intermediate only.
 */
export class ClusterPki extends Construct {
  readonly rootSecret: NamedSecret;
  readonly intermediateSecret: NamedSecret;
  /** Literal names (the secrets' own `secretName` is a token parsed from the ARN). */
  readonly rootSecretName: string;
  readonly intermediateSecretName: string;
  /** The roots and the intermediate certificate, no key: for clients of the cluster's TLS. */
  readonly trustSecret: NamedSecret;
  readonly trustSecretName: string;
  /**
   * SSM parameter holding every root the cluster trusts (PEM, no key), which
   * the CA function writes: where clients fetch their `sslrootcert`.
   */
  readonly rootsParameterName: string;

  constructor(scope: Construct, id: string, props: ClusterPkiProps) {
    super(scope, id);
    this.rootSecretName = `${props.clusterName}/pki/root`;
    this.intermediateSecretName = `${props.clusterName}/pki/intermediate`;
    this.trustSecretName = `${props.clusterName}/pki/trust`;
    this.rootsParameterName = `/${props.clusterName}/pki/root-certificates`;
    const secret = (id: string, secretName: string, description: string) => {
      const created = new NamedSecret(this, id, {
        secretName,
        description,
        encryptionKey: props.encryptionKey,
        // Not a secret: the marker that the CA has not been made yet.
        secretStringValue: SecretValue.unsafePlainText('{}'),
        breakGlassRoleArn: props.breakGlassRoleArn,
        // A value written by another role would be trusted by every node.
        guardWrites: true,
        // Kept when the stack is deleted, as the data volumes' snapshots are: a
        // cluster restored from them needs the CA its nodes and clients trust.
        removalPolicy: RemovalPolicy.RETAIN,
      });
      Validations.of(created).acknowledge({
        id: 'AwsSolutions::AwsSolutions-SMG4',
        reason:
          'A CA key is not a password: it is replaced by issuing a new CA (intermediate or root rollover), which re-issues every leaf; Secrets Manager rotation cannot do that.',
      });
      return created;
    };
    this.rootSecret = secret(
      'Root',
      this.rootSecretName,
      `${props.clusterName}: root CA certificate and key`,
    );
    this.intermediateSecret = secret(
      'Intermediate',
      this.intermediateSecretName,
      `${props.clusterName}: issuing CA certificate and key, and the root certificate`,
    );
    this.trustSecret = secret(
      'Trust',
      this.trustSecretName,
      `${props.clusterName}: trusted root certificates and the issuing CA certificate (no keys)`,
    );
  }

  /** Lets `grantee` verify the cluster's TLS: the certificates, no key. */
  grantReadTrust(grantee: iam.IGrantable): iam.Grant {
    return this.trustSecret.grantRead(grantee);
  }

  /** Lets `grantee` sign certificates: read the intermediate, nothing above it. */
  grantIssue(grantee: iam.IGrantable): iam.Grant {
    return this.intermediateSecret.grantRead(grantee);
  }

  /** Lets `grantee` write the roots parameter (and read it, to skip an unchanged write). */
  grantPublishRoots(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['ssm:GetParameter', 'ssm:PutParameter'],
      resourceArns: [
        Stack.of(this).formatArn({
          service: 'ssm',
          resource: 'parameter',
          resourceName: this.rootsParameterName.slice(1),
        }),
      ],
    });
  }

  /** Lets `grantee` make the CA: read and write all three secrets. */
  grantManage(grantee: iam.IGrantable): iam.Grant {
    return [this.rootSecret, this.intermediateSecret, this.trustSecret]
      .flatMap((secret) => [secret.grantRead(grantee), secret.grantWrite(grantee)])
      .reduce((all, grant) => all.combine(grant));
  }
}
