import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

export interface ClusterSecretsProps {
  /** Prefix of every secret name: `<clusterName>/<purpose>`. */
  readonly clusterName: string;
  /**
   * Name of an existing secret holding the EDB repository token.
   * @default - no EDB repository access (PEM disabled)
   */
  readonly edbRepoTokenSecretName?: string;
}

/** Database and REST API credentials, by the role they play. */
export type CredentialPurpose =
  'patroniSuperuser' | 'patroniReplication' | 'patroniRewind' | 'patroniRestApi' | 'pemSuperuser';

const USERNAMES: Record<CredentialPurpose, string> = {
  patroniSuperuser: 'patroni_super',
  patroniReplication: 'patroni_rep',
  patroniRewind: 'patroni_rew',
  patroniRestApi: 'patroni_api',
  pemSuperuser: 'pemsuper',
};

/**
 * The cluster's KMS key and generated credentials. Nodes fetch secret values
 * with their instance role at run time; no value ever enters the template.
 */
export class ClusterSecrets extends Construct {
  readonly key: kms.Key;
  readonly credentials: ReadonlyMap<CredentialPurpose, secretsmanager.Secret>;
  readonly edbRepoToken?: secretsmanager.ISecret;

  constructor(scope: Construct, id: string, props: ClusterSecretsProps) {
    super(scope, id);
    if (!/^[a-z][a-z0-9-]*$/.test(props.clusterName)) {
      throw new Error(
        `ClusterSecrets: clusterName must be lowercase letters, digits and hyphens; got ${JSON.stringify(props.clusterName)}`,
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
    this.secretNames = new Map(
      wanted.map((purpose) => [purpose, `${props.clusterName}/${purpose}`]),
    );
    this.credentials = new Map(
      wanted.map((purpose) => [purpose, this.generatedCredential(props.clusterName, purpose)]),
    );
    if (props.edbRepoTokenSecretName) {
      this.edbRepoToken = secretsmanager.Secret.fromSecretNameV2(
        this,
        'EdbRepoToken',
        props.edbRepoTokenSecretName,
      );
    }
  }

  /** Lets `grantee` read the given credentials (and decrypt them). */
  grantRead(grantee: iam.IGrantable, purposes: readonly CredentialPurpose[]): void {
    for (const purpose of purposes) {
      const secret = this.credentials.get(purpose);
      if (!secret)
        throw new Error(`ClusterSecrets.grantRead: no ${purpose} credential in this cluster`);
      secret.grantRead(grantee);
    }
  }

  /** Lets `grantee` read the EDB repository token, when PEM is enabled. */
  grantReadEdbRepoToken(grantee: iam.IGrantable): void {
    this.edbRepoToken?.grantRead(grantee);
  }

  /** Secret names by purpose, for stack outputs (names only, never values). */
  readonly secretNames: ReadonlyMap<CredentialPurpose, string>;

  private generatedCredential(
    clusterName: string,
    purpose: CredentialPurpose,
  ): secretsmanager.Secret {
    const secret = new secretsmanager.Secret(this, purpose, {
      secretName: this.secretNames.get(purpose),
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
        'Changing a database or REST API password means ALTER ROLE on the primary and a patroni.yml reload on every node in step; a single-secret rotation Lambda would break replication and failover. TLS credentials are rotated on schedule instead.',
    });
    return secret;
  }
}
