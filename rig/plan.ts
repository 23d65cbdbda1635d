/**
 * What the rig builds, read from the synthesized template: one node per EC2
 * instance (its tier, fixed address, data volume), stand-in ids for what AWS
 * would assign, the secrets nodes read, and the NLB's place in the network.
 */
import { createHash, randomBytes } from 'node:crypto';
import { TIERS, type Tier } from '../functions/lib/inventory';
import { nodeNumberOf } from '../infra/workflows/inventory';
import {
  ResourceValues,
  resolveIntrinsics,
  resourcesOfType,
  SynthesizedTemplate,
  TemplateResource,
} from './template';

export interface RigNodePlan {
  readonly name: string;
  readonly tier: Tier;
  readonly logicalId: string;
  /** What EC2 would have called it: the rig's stand-in id. */
  readonly instanceId: string;
  readonly address: string;
  readonly dataVolume?: {
    readonly logicalId: string;
    readonly volumeId: string;
    /** The template's size: the rig's volume is a sparse file of it. */
    readonly sizeGiB: number;
  };
}

export interface RigPlan {
  /** The nodes' pem-ha:cluster tag: Patroni's scope and the restore's confirm. */
  readonly clusterName: string;
  readonly vpcCidr: string;
  readonly nodes: readonly RigNodePlan[];
  /** Address of the NLB stand-in (HAProxy), inside the first private subnet. */
  readonly nlbAddress: string;
  /** Address of the ALB stand-in, next to the NLB's. */
  readonly albAddress: string;
  /**
   * Address of the S3 stand-in: outside every subnet, as S3 is outside the
   * VPC, next to the host's (the last but one of the VPC's range).
   */
  readonly storageAddress: string;
}

const tagsOf = (resource: TemplateResource) =>
  new Map(
    ((resource.Properties?.Tags ?? []) as { Key: string; Value: string }[]).map((t) => [
      t.Key,
      t.Value,
    ]),
  );

const refOf = (value: unknown) => (value as { Ref?: string } | undefined)?.Ref;

/**
 * An instance's number from its node's name (etcd-2 is 0x12, backend-4 0x24,
 * web-1 0x31): a deploy that adds a node leaves every other node's id as it
 * was, as EC2 would. A name without a number keeps its position.
 */
function instanceNumber(tier: string, name: string, index: number): number {
  const number = nodeNumberOf(name);
  const base = { etcd: 0x10, backend: 0x20, web: 0x30 }[tier];
  return number !== undefined && base !== undefined && number < 16 ? base + number : 0x100 + index;
}

/** `i-` or `vol-` and 17 hex digits, numbered so they read well in logs. */
export function standInId(prefix: 'i' | 'vol', index: number): string {
  return `${prefix}-${index.toString(16).padStart(17, '0')}`;
}

function hostIn(cidr: string, offset: number): string {
  const [base] = cidr.split('/');
  const octets = base.split('.').map(Number);
  const value = ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) + offset;
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 255).join('.');
}

export function planCluster(template: SynthesizedTemplate): RigPlan {
  const [vpc] = resourcesOfType(template, 'AWS::EC2::VPC');
  if (!vpc)
    throw new Error(
      'the template has no VPC: the rig needs the new-VPC topology (no vpcId setting)',
    );
  const vpcCidr = String(vpc[1].Properties?.CidrBlock);
  const subnets = new Map(resourcesOfType(template, 'AWS::EC2::Subnet'));
  const volumesByInstance = new Map(
    resourcesOfType(template, 'AWS::EC2::VolumeAttachment').map(([, attachment]) => [
      refOf(attachment.Properties?.InstanceId),
      refOf(attachment.Properties?.VolumeId),
    ]),
  );
  let volumes = 0;
  const instances = resourcesOfType(template, 'AWS::EC2::Instance');
  const nodes = instances.map(([logicalId, instance], index): RigNodePlan => {
    const tags = tagsOf(instance);
    const name = tags.get('pem-ha:node');
    const tier = TIERS.find((known) => known === tags.get('pem-ha:tier'));
    if (!name || !tier)
      throw new Error(
        `instance ${logicalId} needs a pem-ha:node tag and a pem-ha:tier tag of ${TIERS.join(', ')}`,
      );
    const address = instance.Properties?.PrivateIpAddress;
    if (typeof address !== 'string')
      throw new Error(`instance ${logicalId} needs a fixed PrivateIpAddress (every tier has one)`);
    const volumeLogicalId = volumesByInstance.get(logicalId);
    const sizeGiB = Number(template.Resources[volumeLogicalId ?? '']?.Properties?.Size);
    return {
      name,
      tier,
      logicalId,
      instanceId: standInId('i', instanceNumber(tier, name, index)),
      address,
      ...(volumeLogicalId && {
        dataVolume: {
          logicalId: volumeLogicalId,
          volumeId: standInId('vol', ++volumes),
          sizeGiB,
        },
      }),
    };
  });
  const firstPrivate = [...subnets.values()]
    .filter((subnet) => subnet.Properties?.MapPublicIpOnLaunch === false)
    .map((subnet) => String(subnet.Properties?.CidrBlock))[0];
  const clusterName = tagsOf(instances[0]?.[1] ?? {}).get('pem-ha:cluster');
  if (!clusterName) throw new Error('the instances need a pem-ha:cluster tag');
  return {
    clusterName,
    vpcCidr,
    nodes,
    nlbAddress: hostIn(firstPrivate ?? vpcCidr, 100),
    albAddress: hostIn(firstPrivate ?? vpcCidr, 101),
    storageAddress: storageAddressIn(vpcCidr),
  };
}

/** The storage node's address: outside every subnet, near the top of the VPC's range. */
export function storageAddressIn(vpcCidr: string): string {
  return hostIn(vpcCidr, 2 ** (32 - Number(vpcCidr.split('/')[1])) - 3);
}

export interface RigSecret {
  readonly name: string;
  readonly value: string;
}

/**
 * Values for the template's secrets as Secrets Manager would make them: a
 * generated password for GenerateSecretString, the literal SecretString
 * otherwise. `extra` adds secrets the user creates before deploying.
 */
export function seedSecrets(
  template: SynthesizedTemplate,
  extra: readonly RigSecret[] = [],
): RigSecret[] {
  const generated = resourcesOfType(template, 'AWS::SecretsManager::Secret').map(
    ([logicalId, secret]) => {
      const properties = secret.Properties ?? {};
      const name = properties.Name;
      if (typeof name !== 'string') throw new Error(`secret ${logicalId} has no literal Name`);
      const generate = properties.GenerateSecretString as
        | { SecretStringTemplate: string; GenerateStringKey: string; PasswordLength?: number }
        | undefined;
      if (!generate) return { name, value: String(properties.SecretString ?? '') };
      const length = generate.PasswordLength ?? 32;
      const password = randomBytes(length * 2)
        .toString('base64')
        .replace(/[^A-Za-z0-9]/g, '')
        .slice(0, length);
      const value = {
        ...JSON.parse(generate.SecretStringTemplate),
        [generate.GenerateStringKey]: password,
      };
      return { name, value: JSON.stringify(value) };
    },
  );
  return [...generated, ...extra];
}

/** A stable KMS key id (a UUID's shape) for a key's logical id. */
function keyIdOf(logicalId: string): string {
  const hex = createHash('sha256').update(logicalId).digest('hex');
  return [
    hex.slice(0, 8),
    hex.slice(8, 12),
    hex.slice(12, 16),
    hex.slice(16, 20),
    hex.slice(20, 32),
  ].join('-');
}

/**
 * What Ref and GetAtt resolve to on the rig: instances to their ids and
 * addresses, load balancers' DNS names to made-up names, volumes to their ids, documents to their names, buckets to
 * lowercase names, keys to key ARNs, functions and
 * state machines to ARNs that name their logical id (the rig binds tasks by
 * it, and records executions under it).
 */
export function rigResourceValues(
  plan: RigPlan,
  template: SynthesizedTemplate,
  pseudo: { readonly region: string; readonly accountId: string },
): ResourceValues {
  const nodes = new Map(plan.nodes.map((node) => [node.logicalId, node]));
  const volumes = new Map(
    plan.nodes
      .filter((n) => n.dataVolume)
      .map((n) => [n.dataVolume!.logicalId, n.dataVolume!.volumeId]),
  );
  return {
    ref: (logicalId: string) => {
      const resource = template.Resources[logicalId];
      if (nodes.has(logicalId)) return nodes.get(logicalId)!.instanceId;
      if (volumes.has(logicalId)) return volumes.get(logicalId)!;
      if (resource?.Type === 'AWS::SSM::Document') return String(resource.Properties?.Name);
      // S3 wants lowercase names.
      if (resource?.Type === 'AWS::S3::Bucket') return `rig-${logicalId.toLowerCase()}`;
      if (resource?.Type === 'AWS::StepFunctions::StateMachine')
        return `arn:aws:states:${pseudo.region}:${pseudo.accountId}:stateMachine:${logicalId}`;
      return `rig-${logicalId}`;
    },
    getAtt: (logicalId: string, attribute: string) => {
      if (attribute === 'PrivateIp' && nodes.has(logicalId)) return nodes.get(logicalId)!.address;
      if (
        attribute === 'Name' &&
        template.Resources[logicalId]?.Type === 'AWS::StepFunctions::StateMachine'
      )
        return logicalId;
      // A name to verify, never looked up: clients connect to the stand-in's address.
      if (
        attribute === 'DNSName' &&
        template.Resources[logicalId]?.Type === 'AWS::ElasticLoadBalancingV2::LoadBalancer'
      )
        return `${logicalId.toLowerCase()}.elb.${pseudo.region}.rig.internal`;
      if (attribute === 'Arn' && template.Resources[logicalId]?.Type === 'AWS::KMS::Key')
        return `arn:aws:kms:${pseudo.region}:${pseudo.accountId}:key/${keyIdOf(logicalId)}`;
      if (attribute === 'Arn')
        return `arn:aws:lambda:${pseudo.region}:${pseudo.accountId}:function:${logicalId}`;
      return `rig-${logicalId}.${attribute}`;
    },
  };
}

/** A stack output's value as CloudFormation would give it on a rig of `plan`. */
export function rigOutput(
  plan: RigPlan,
  template: SynthesizedTemplate,
  pseudo: { readonly region: string; readonly accountId: string },
  name: string,
): string {
  const value = template.Outputs?.[name]?.Value;
  if (value === undefined) throw new Error(`the template has no output ${name}`);
  return String(resolveIntrinsics(value, rigResourceValues(plan, template, pseudo), pseudo));
}
