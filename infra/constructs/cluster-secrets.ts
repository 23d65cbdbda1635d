import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { ValidationError } from './errors';
import { NamedSecret } from './named-secret';

export interface ClusterSecretsProps {
  /** Prefix of every secret name: `<clusterName>/<purpose>`. */
  readonly clusterName: string;
  /**
   * Name of an existing secret holding the EDB repository token.
   * @default - no EDB repository access (PEM disabled)
   */
  readonly edbRepoTokenSecretName?: string;
  /**
   * A role that may read every credential besides the roles granted each.
   * @default - none
   */
  readonly breakGlassRoleArn?: string;
}

/** Database, REST API and etcd credentials, by the role they play. */
export type CredentialPurpose =
  | 'patroniSuperuser'
  | 'patroniReplication'
  | 'patroniRewind'
  | 'patroniRestApi'
  | 'patroniEtcd'
  | 'pemSuperuser';

const USERNAMES: Record<CredentialPurpose, string> = {
  patroniSuperuser: 'patroni_super',
  patroniReplication: 'patroni_rep',
  patroniRewind: 'patroni_rew',
  patroniRestApi: 'patroni_api',
  // Patroni's etcd login: its role reads and writes only the cluster's keys.
  patroniEtcd: 'patroni',
  pemSuperuser: 'pemsuper',
};

/**
 * The cluster's KMS key and generated credentials. Nodes fetch secret values
 * with their instance role at run time; no value ever enters the template.
 */
export class ClusterSecrets extends Construct {
  readonly key: kms.Key;
  readonly credentials: ReadonlyMap<CredentialPurpose, NamedSecret>;
  /** Secret names by purpose, for stack outputs (names only, never values). */
  readonly secretNames: ReadonlyMap<CredentialPurpose, string>;
  readonly edbRepoToken?: secretsmanager.ISecret;

  constructor(scope: Construct, id: string, props: ClusterSecretsProps) {
    super(scope, id);
    if (!/^[a-z][a-z0-9-]*$/.test(props.clusterName)) {
      throw new ValidationError(
        this,
        `clusterName must be lowercase letters, digits and hyphens; got ${JSON.stringify(props.clusterName)}`,
      );
    }
    this.key = new kms.Key(this, 'Key', {
      description: `${props.clusterName}: secrets, EBS volumes and logs`,
      enableKeyRotation: true,
      rotationPeriod: Duration.days(365),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const purposes = Object.keys(USERNAMES) as CredentialPurpose[];
    const wanted = props.edbRepoTokenSecretName
      ? purposes
      : purposes.filter((p) => p !== 'pemSuperuser');
    this.credentials = new Map(
      wanted.map((purpose) => [purpose, this.generatedCredential(props, purpose)]),
    );
    this.secretNames = new Map(
      [...this.credentials].map(([purpose, secret]) => [purpose, secret.literalName]),
    );
    if (props.edbRepoTokenSecretName) {
      this.edbRepoToken = secretsmanager.Secret.fromSecretNameV2(
        this,
        'EdbRepoToken',
        props.edbRepoTokenSecretName,
      );
    }
  }

  /** The credential for `purpose`; throws when the cluster has none (pemSuperuser without PEM). */
  credential(purpose: CredentialPurpose): NamedSecret {
    const secret = this.credentials.get(purpose);
    if (!secret) {
      throw new ValidationError(
        this,
        `no ${purpose} credential in this cluster (it has ${[...this.credentials.keys()].join(', ')})`,
      );
    }
    return secret;
  }

  /** Lets `grantee` read the given credentials (and decrypt them). */
  grantRead(grantee: iam.IGrantable, purposes: readonly CredentialPurpose[]): iam.Grant {
    const grants = purposes.map((purpose) => this.credential(purpose).grantRead(grantee));
    if (grants.length === 0) return iam.Grant.drop(grantee, 'read no credentials');
    return grants.reduce((all, grant) => all.combine(grant));
  }

  /** Lets `grantee` read the EDB repository token; a dropped grant when PEM is disabled. */
  grantReadEdbRepoToken(grantee: iam.IGrantable): iam.Grant {
    return (
      this.edbRepoToken?.grantRead(grantee) ??
      iam.Grant.drop(grantee, 'read the EDB repository token (PEM disabled: there is none)')
    );
  }

  private generatedCredential(props: ClusterSecretsProps, purpose: CredentialPurpose): NamedSecret {
    const { clusterName } = props;
    const secret = new NamedSecret(this, purpose, {
      breakGlassRoleArn: props.breakGlassRoleArn,
      secretName: `${clusterName}/${purpose}`,
      description: `${clusterName}: ${USERNAMES[purpose]} credentials`,
      encryptionKey: this.key,
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ username: USERNAMES[purpose] }),
        generateStringKey: 'password',
        passwordLength: 32,
        // Values land in patroni.yml, .pgpass and connection strings: no quoting hazards.
        excludePunctuation: true,
      },
    });
    Validations.of(secret).acknowledge({
      id: 'AwsSolutions::AwsSolutions-SMG4',
      reason:
        'Changing a database, REST API or etcd password means ALTER ROLE on the primary (or etcdctl user passwd) and a patroni.yml reload on every node in step; a single-secret rotation Lambda would break replication and failover. TLS credentials are rotated on schedule instead.',
    });
    return secret;
  }
}
