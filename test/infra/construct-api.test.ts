import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { BackendTier } from '../../infra/constructs/backend-tier';
import { ClusterPki } from '../../infra/constructs/cluster-pki';
import { ClusterSecrets } from '../../infra/constructs/cluster-secrets';
import { ValidationError } from '../../infra/constructs/errors';
import { EtcdTier } from '../../infra/constructs/etcd-tier';
import { literalNameOf, NamedSecret } from '../../infra/constructs/named-secret';
import type { NodePlacementProps } from '../../infra/constructs/node-group';
import { WebTier } from '../../infra/constructs/web-tier';
import { cdkOutdir } from '../helpers/cdk-out';
import { resourcesOf, synthStack } from '../helpers/synth';

/** A stack with a three-AZ VPC and a key: what every tier is placed with. */
function placed() {
  const app = new App({ outdir: cdkOutdir(), context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'Test', { env: { account: '123456789012', region: 'eu-west-1' } });
  const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 3, natGateways: 1 });
  const placement: NodePlacementProps = {
    clusterName: 'pem-ha',
    vpc,
    subnets: vpc.privateSubnets,
    amiFamily: 'ubuntu-24.04',
    encryptionKey: new kms.Key(stack, 'Key'),
  };
  const subnetCidrs = vpc.privateSubnets.map((subnet) => subnet.ipv4CidrBlock);
  return { stack, placement, subnetCidrs };
}

/** The error `build` throws, which must be a ValidationError. */
function validationErrorOf(build: () => unknown): ValidationError {
  try {
    build();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('expected a ValidationError; nothing was thrown');
}

describe('node tiers share one placement', () => {
  it('builds every tier from the same placement props, each with its own defaults', () => {
    // Given one placement for all three tiers and no counts or instance types
    const { stack, placement, subnetCidrs } = placed();
    new EtcdTier(stack, 'Etcd', { ...placement, subnetCidrs });
    new BackendTier(stack, 'Backend', { ...placement, subnetCidrs });
    new WebTier(stack, 'Web', { ...placement, subnetCidrs });

    // Then each tier runs its default count of its default instance type
    const types = Object.values(resourcesOf(Template.fromStack(stack), 'AWS::EC2::Instance'))
      .map((instance) => String(instance.Properties.InstanceType))
      .sort();
    expect(types).toEqual([
      ...Array(3).fill('m6i.large'),
      ...Array(2).fill('t3.medium'),
      ...Array(3).fill('t3.small'),
    ]);
  });

  it.each([
    [
      'EtcdTier',
      4,
      'EtcdTier at Test/Etcd: nodeCount must be an odd integer of at least 3; got 4',
      'Test/Etcd',
    ],
    [
      'BackendTier',
      1,
      'BackendTier at Test/Backend: nodeCount must be an integer of at least 2; got 1',
      'Test/Backend',
    ],
    [
      'WebTier',
      0,
      'WebTier at Test/Web: nodeCount must be an integer of at least 1; got 0',
      'Test/Web',
    ],
  ])(
    'rejects a %s nodeCount of %d, naming the construct, the prop, what is allowed and what was given',
    (tier, nodeCount, message, path) => {
      // Given a tier with a node count it cannot work with
      const { stack, placement, subnetCidrs } = placed();
      const build = {
        EtcdTier: () => new EtcdTier(stack, 'Etcd', { ...placement, subnetCidrs, nodeCount }),
        BackendTier: () =>
          new BackendTier(stack, 'Backend', { ...placement, subnetCidrs, nodeCount }),
        WebTier: () => new WebTier(stack, 'Web', { ...placement, subnetCidrs, nodeCount }),
      }[tier]!;

      // When it is created, Then it fails with the construct's path attached
      const error = validationErrorOf(build);
      expect(error.message).toBe(message);
      expect(error.constructPath).toBe(path);
    },
  );
});

describe('secrets and grants', () => {
  it('returns grants: combined for several secrets, dropped for an absent one', () => {
    // Given the cluster's secrets without PEM (no EDB token) and its CA
    const { stack } = placed();
    const secrets = new ClusterSecrets(stack, 'Secrets', { clusterName: 'pem-ha' });
    const pki = new ClusterPki(stack, 'Pki', { clusterName: 'pem-ha', encryptionKey: secrets.key });
    const role = () =>
      new iam.Role(stack, `Role${stack.node.children.length}`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      });

    // Then several secrets make one grant of all their statements
    const read = secrets.grantRead(role(), ['patroniRestApi', 'patroniRewind']);
    expect(read.success).toBe(true);
    expect(read.principalStatements).toHaveLength(2);
    const manage = pki.grantManage(role());
    expect(manage.success).toBe(true);
    expect(manage.principalStatements).toHaveLength(6);
    expect(pki.grantReadTrust(role()).success).toBe(true);
    // And a secret the cluster does not have is a dropped grant, not an error
    const token = secrets.grantReadEdbRepoToken(role());
    expect(token.success).toBe(false);
    expect(token.principalStatements).toHaveLength(0);
    expect(secrets.grantRead(role(), []).success).toBe(false);
    // While asking for a credential the cluster lacks names what it has
    expect(validationErrorOf(() => secrets.credential('pemSuperuser')).message).toBe(
      'ClusterSecrets at Test/Secrets: no pemSuperuser credential in this cluster (it has patroniSuperuser, patroniReplication, patroniRewind, patroniRestApi, patroniEtcd)',
    );
  });

  it("reads a secret's literal name for functions and documents, or says why it cannot", () => {
    // Given a named secret, one imported by name, and one named only at deploy time
    const { stack } = placed();
    const named = new NamedSecret(stack, 'Named', { secretName: 'pem-ha/patroniRestApi' });
    const imported = secretsmanager.Secret.fromSecretNameV2(stack, 'Imported', 'pem-ha/token');
    const unnamed = new secretsmanager.Secret(stack, 'Unnamed');

    // Then the first two give their names as plain strings
    expect(literalNameOf(stack, 'restApiSecret', named)).toBe('pem-ha/patroniRestApi');
    expect(literalNameOf(stack, 'restApiSecret', imported)).toBe('pem-ha/token');
    // And the third is rejected with the prop named
    expect(validationErrorOf(() => literalNameOf(stack, 'restApiSecret', unnamed)).message).toBe(
      'Stack at Test: restApiSecret must be a secret whose name is known at synth time (a NamedSecret, or one imported with Secret.fromSecretNameV2); got Test/Unnamed, named only at deploy time',
    );
  });
});

describe('web access logs', () => {
  const writerOf = (settings: Record<string, unknown>) => {
    const { template } = synthStack(settings);
    const [policy] = Object.entries(resourcesOf(template, 'AWS::S3::BucketPolicy')).filter(([id]) =>
      id.startsWith('WebAccessLogs'),
    );
    const statements = (policy[1].Properties.PolicyDocument as { Statement: unknown[] })
      .Statement as Array<{ Action: unknown; Principal?: unknown; Effect: string }>;
    return statements.filter((s) => s.Effect === 'Allow' && s.Action === 's3:PutObject');
  };

  it('lets the regional log writer put objects in an environment-agnostic template, chosen at deploy', () => {
    // Given no region, Then one statement names both writers behind the region condition
    const [statement, ...others] = writerOf({});
    expect(others).toEqual([]);
    const condition = {
      'Fn::If': [
        expect.stringMatching(/^WebRegionHasElbAccount/),
        expect.anything(),
        expect.anything(),
      ],
    };
    expect(statement.Principal).toEqual({ AWS: condition, Service: condition });
    const { AWS, Service } = statement.Principal as Record<string, { 'Fn::If': unknown[] }>;
    // And CloudFormation keeps the ELB account where the region has one, else the service
    expect(AWS['Fn::If'][2]).toEqual({ Ref: 'AWS::NoValue' });
    expect(Service['Fn::If']).toEqual([
      expect.any(String),
      { Ref: 'AWS::NoValue' },
      'logdelivery.elasticloadbalancing.amazonaws.com',
    ]);
  });

  it("lets the region's ELB account put objects when the region is known", () => {
    // Given eu-west-1, Then its ELB account is the writer (CDK's logAccessLogs)
    const statements = writerOf({ account: '123456789012', region: 'eu-west-1' });
    expect(JSON.stringify(statements)).toContain(':iam::156460612806:root');
  });
});
