import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { accessLogBucket } from './access-log-bucket';
import { checkRange } from './errors';
import { acknowledge, logicalIdOf } from './nag';

export interface BackupRepositoryProps {
  /** The repository path (`/<clusterName>`) and pgBackRest's stanza. */
  readonly clusterName: string;
  /** Encrypts every object (SSE-KMS with a bucket key). */
  readonly encryptionKey: kms.IKey;
  /**
   * Days of point-in-time recovery kept. pgBackRest expires backups itself;
   * S3 keeps what it deletes as old versions for as long, so a backup deleted
   * by mistake, or by an attacker with the node role, can still be recovered.
   * @default 35
   */
  readonly retentionDays?: number;
  /** The only role that reads and writes the cluster's objects: the backends'. */
  readonly writer: iam.IRole;
}

/** Object actions pgBackRest needs: its own files, nothing on the bucket's settings. */
const OBJECT_ACTIONS = ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'];

/**
 * The pgBackRest repository: a versioned S3 bucket encrypted with the
 * stack's key, reachable only over TLS, kept when the stack is deleted.
 * Nodes reach it through the VPC's S3 gateway endpoint with their instance
 * role; no static key exists. Only `writer` may touch the cluster's prefix:
 * the bucket policy denies everyone else, whatever their IAM policies say.
 */
export class BackupRepository extends Construct {
  readonly bucket: s3.Bucket;
  /** pgBackRest's `repo1-path`: the cluster's prefix, so one bucket could hold several stanzas. */
  readonly repositoryPath: string;
  /** pgBackRest's stanza. */
  readonly stanza: string;
  readonly retentionDays: number;
  private readonly encryptionKey: kms.IKey;

  constructor(scope: Construct, id: string, props: BackupRepositoryProps) {
    super(scope, id);
    const retentionDays = props.retentionDays ?? 35;
    checkRange(this, 'retentionDays', retentionDays, 1, 3650);
    this.retentionDays = retentionDays;
    this.stanza = props.clusterName;
    this.repositoryPath = `/${props.clusterName}`;
    this.encryptionKey = props.encryptionKey;

    const accessLogs = accessLogBucket(
      this,
      'AccessLogs',
      "This is the repository's access log bucket; logging it into itself would loop.",
    );

    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: props.encryptionKey,
      bucketKeyEnabled: true,
      versioned: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'repository/',
      // Backups outlive the stack: deleting it must never delete them.
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        {
          id: 'deleted-backups-kept-for-the-retention-window',
          noncurrentVersionExpiration: Duration.days(retentionDays),
          expiredObjectDeleteMarker: true,
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
    });

    this.grantReadWrite(props.writer);
    acknowledge(props.writer, [
      [
        `Resource::<${logicalIdOf(this.bucket)}.Arn>/${props.clusterName}/*`,
        "pgBackRest names its WAL and backup files as it writes them: every object under the cluster's own prefix, no other.",
      ],
    ]);
    // Deny beats any Allow: an account-wide S3 policy elsewhere does not reach the backups.
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'OnlyTheBackendsTouchTheRepository',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: [...OBJECT_ACTIONS, 's3:GetObjectVersion', 's3:DeleteObjectVersion'],
        resources: [this.bucket.arnForObjects(`${props.clusterName}/*`)],
        conditions: { ArnNotEquals: { 'aws:PrincipalArn': props.writer.roleArn } },
      }),
    );
  }

  /** pgBackRest's `repo1-s3-endpoint`: the regional name, which the gateway endpoint serves. */
  get endpoint(): string {
    const stack = Stack.of(this);
    return `s3.${stack.region}.${stack.urlSuffix}`;
  }

  /** The key objects are encrypted with (pgBackRest's `repo1-s3-kms-key-id`). */
  get kmsKeyArn(): string {
    return this.encryptionKey.keyArn;
  }

  /** Lets `grantee` list, read, write and delete the cluster's repository objects. */
  private grantReadWrite(grantee: iam.IGrantable): iam.Grant {
    const prefix = this.repositoryPath.slice(1);
    const list = iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:ListBucket'],
      resourceArns: [this.bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [prefix, `${prefix}/*`] } },
    });
    const objects = iam.Grant.addToPrincipal({
      grantee,
      actions: OBJECT_ACTIONS,
      resourceArns: [this.bucket.arnForObjects(`${prefix}/*`)],
    });
    // Only through S3 and only for this bucket: the key also guards the cluster's secrets.
    const key = iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
      resourceArns: [this.encryptionKey.keyArn],
      conditions: {
        StringEquals: {
          'kms:ViaService': `s3.${Stack.of(this).region}.amazonaws.com`,
          'kms:EncryptionContext:aws:s3:arn': this.bucket.bucketArn,
        },
      },
    });
    return list.combine(objects).combine(key);
  }
}
