import { Template } from 'aws-cdk-lib/assertions';
import { resourcesOf, synthStack } from '../helpers/synth';

type Statement = {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
  Principal?: unknown;
};
const actionsOf = (statement: Statement) => [statement.Action].flat();

/** The one backup bucket (not its access-log bucket), by logical id. */
function repository(template: Template) {
  const buckets = Object.entries(resourcesOf(template, 'AWS::S3::Bucket')).filter(
    ([, bucket]) =>
      (bucket.Properties.BucketEncryption as { ServerSideEncryptionConfiguration: unknown[] })
        ?.ServerSideEncryptionConfiguration?.[0] !== undefined &&
      JSON.stringify(bucket.Properties.BucketEncryption).includes('aws:kms'),
  );
  expect(buckets).toHaveLength(1);
  const [id, bucket] = buckets[0];
  return {
    id,
    bucket: bucket as typeof bucket & { DeletionPolicy?: string; UpdateReplacePolicy?: string },
  };
}

function policyStatementsOf(template: Template, bucketId: string): Statement[] {
  const policies = Object.values(resourcesOf(template, 'AWS::S3::BucketPolicy')).filter(
    (policy) => JSON.stringify(policy.Properties.Bucket) === JSON.stringify({ Ref: bucketId }),
  );
  expect(policies).toHaveLength(1);
  return (policies[0].Properties.PolicyDocument as { Statement: Statement[] }).Statement;
}

/** Identity-policy statements of every role that can write objects of the bucket. */
function writersOf(template: Template, bucketId: string): string[] {
  return Object.entries(resourcesOf(template, 'AWS::IAM::Policy'))
    .filter(([, policy]) =>
      (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement.some(
        (statement) =>
          statement.Effect === 'Allow' &&
          actionsOf(statement).some((action) => /^s3:(PutObject|\*)/.test(action)) &&
          JSON.stringify(statement.Resource).includes(bucketId),
      ),
    )
    .flatMap(([, policy]) => policy.Properties.Roles as { Ref: string }[])
    .map((role) => role.Ref);
}

const backendRoleOf = (template: Template) => {
  const roles = Object.keys(resourcesOf(template, 'AWS::IAM::Role')).filter((id) =>
    id.startsWith('BackendNodesRole'),
  );
  expect(roles).toHaveLength(1);
  return roles[0];
};

describe('backup repository', () => {
  const { template } = synthStack();
  const { id, bucket } = repository(template);

  test('Given the default configuration, then the repository is versioned, KMS-encrypted with the stack key, private, and outlives the stack', () => {
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.UpdateReplacePolicy).toBe('Retain');
    expect(bucket.Properties.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    const [rule] = (
      bucket.Properties.BucketEncryption as {
        ServerSideEncryptionConfiguration: {
          ServerSideEncryptionByDefault: { KMSMasterKeyID: unknown; SSEAlgorithm: string };
        }[];
      }
    ).ServerSideEncryptionConfiguration;
    expect(rule.ServerSideEncryptionByDefault.SSEAlgorithm).toBe('aws:kms');
    const keys = Object.keys(resourcesOf(template, 'AWS::KMS::Key'));
    expect(keys).toHaveLength(1);
    expect(rule.ServerSideEncryptionByDefault.KMSMasterKeyID).toEqual({
      'Fn::GetAtt': [keys[0], 'Arn'],
    });
    expect(Object.keys(resourcesOf(template, 'AWS::IAM::AccessKey'))).toEqual([]);
  });

  test('Given the bucket policy, then it refuses plain HTTP and every principal but the backend role on the cluster prefix', () => {
    const statements = policyStatementsOf(template, id);
    const tls = statements.find((s) => s.Condition?.Bool?.['aws:SecureTransport'] === 'false');
    expect(tls?.Effect).toBe('Deny');
    const others = statements.find((s) => s.Condition?.ArnNotEquals !== undefined);
    expect(others?.Effect).toBe('Deny');
    expect(actionsOf(others!)).toEqual(expect.arrayContaining(['s3:GetObject', 's3:PutObject']));
    expect(others!.Condition!.ArnNotEquals['aws:PrincipalArn']).toEqual({
      'Fn::GetAtt': [backendRoleOf(template), 'Arn'],
    });
    expect(JSON.stringify(others!.Resource)).toContain('/pem-ha/*');
  });

  test('Given the roles, then only the backends may write to the repository, within the cluster prefix', () => {
    expect(writersOf(template, id)).toEqual([backendRoleOf(template)]);
  });

  test.each([
    [{}, '35', '60'],
    [{ backupRetentionDays: 7, archiveTimeoutSeconds: 30 }, '7', '30'],
  ])(
    'Given %j, then old versions expire with the retention and the patroni document archives on that timeout',
    (settings, retention, timeout) => {
      const synthesized = synthStack(settings).template;
      const repo = repository(synthesized);
      const rules = (
        repo.bucket.Properties.LifecycleConfiguration as {
          Rules: { NoncurrentVersionExpiration?: { NoncurrentDays: number } }[];
        }
      ).Rules;
      expect(rules.map((r) => r.NoncurrentVersionExpiration?.NoncurrentDays)).toEqual([
        Number(retention),
      ]);
      const patroni = Object.values(resourcesOf(synthesized, 'AWS::SSM::Document')).find(
        (document) => document.Properties.Name === 'pem-ha-patroni',
      )!.Properties.Content as { parameters: Record<string, { default: unknown }> };
      expect(patroni.parameters.RetentionDays.default).toBe(retention);
      expect(patroni.parameters.ArchiveTimeoutSeconds.default).toBe(timeout);
      expect(patroni.parameters.RepositoryBucket.default).toEqual({ Ref: repo.id });
    },
  );
});
