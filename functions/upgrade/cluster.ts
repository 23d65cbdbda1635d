import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import type { PatroniCluster, PatroniGet, PatroniMember, PatroniSend } from '../lib/patroni';
import { readPatroniCluster } from '../lib/patroni';
import type { ClusterInventory, NodeAddress } from '../lib/inventory';

/** A node as the runbook carries it (the stack's inventory). */
export type UpgradeNode = NodeAddress & { readonly instanceId: string };

export type UpgradeInventory = ClusterInventory<UpgradeNode>;

/** The AWS and Patroni clients every step receives (the handler makes them once). */
export interface UpgradeClients {
  readonly ec2: EC2Client;
  readonly elb: ElasticLoadBalancingV2Client;
  readonly patroniGet: PatroniGet;
  readonly patroniSend: PatroniSend;
  /**
   * The NLB's target groups: writes (GET /primary) and reads (GET /replica);
   * the ALB's web target group when the stack has PEM.
   */
  readonly targetGroups: { readonly write: string; readonly read: string; readonly web?: string };
  readonly clusterName: string;
  readonly now?: () => number;
}

export const isLeader = (member: PatroniMember) =>
  member.role === 'leader' || member.role === 'master' || member.role === 'primary';
/** Patroni 3.0 reports replicas as "running", later releases as "streaming". */
export const isRunning = (member: PatroniMember) =>
  member.state === 'running' || member.state === 'streaming';
/** Bytes behind the leader; Patroni says "unknown" for a replica it cannot measure. */
export const lagBytes = (member: PatroniMember) =>
  typeof member.lag === 'number' ? member.lag : Number.POSITIVE_INFINITY;

/** Set by the upgrade's drain: out of the read endpoint, never the synchronous standby. */
export const DRAIN_TAGS = ['noloadbalance', 'nosync'] as const;

/** The drain tags set on a member as /cluster lists them: [] when none. */
export const drainTagsOf = (member: PatroniMember | undefined) =>
  DRAIN_TAGS.filter((tag) => member?.tags?.[tag] === true);

export const describeMembers = (cluster: PatroniCluster) =>
  cluster.members
    .map((m) => `${m.name} ${m.role}/${m.state}${isLeader(m) ? '' : ` lag ${m.lag ?? '?'}`}`)
    .join(', ') || 'no members';

export function readCluster(clients: UpgradeClients, inventory: UpgradeInventory) {
  return readPatroniCluster(
    clients.patroniGet,
    inventory.backend.map((n) => n.address),
  );
}

/**
 * Target health as the NLB (write, read) or the ALB (web) reports it:
 * instance id -> state (healthy, unhealthy, draining, ...); a target not
 * registered is absent.
 */
export async function targetHealth(
  clients: UpgradeClients,
  group: keyof UpgradeClients['targetGroups'],
): Promise<Map<string, string>> {
  const answer = await clients.elb.send(
    new DescribeTargetHealthCommand({ TargetGroupArn: clients.targetGroups[group] }),
  );
  return new Map(
    (answer.TargetHealthDescriptions ?? []).map((d) => [
      d.Target?.Id ?? '?',
      d.TargetHealth?.State ?? 'unknown',
    ]),
  );
}

/** The instances of this cluster that EC2 knows, by instance id: state and name tag. */
export async function clusterInstances(
  clients: UpgradeClients,
): Promise<Map<string, { readonly state: string; readonly node: string }>> {
  const instances = new Map<string, { state: string; node: string }>();
  let token: string | undefined;
  for (let page = 0; page < 20; page++) {
    const answer = await clients.ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: 'tag:pem-ha:cluster', Values: [clients.clusterName] },
          {
            Name: 'instance-state-name',
            Values: ['pending', 'running', 'stopping', 'stopped'],
          },
        ],
        NextToken: token,
      }),
    );
    for (const instance of (answer.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
      const node = instance.Tags?.find((t) => t.Key === 'pem-ha:node')?.Value ?? '?';
      instances.set(instance.InstanceId ?? '?', { state: instance.State?.Name ?? '?', node });
    }
    token = answer.NextToken;
    if (!token) break;
  }
  return instances;
}

/** Healthy primary: one leader running in Patroni, and the write endpoint's only healthy target. */
export async function primaryState(
  clients: UpgradeClients,
  inventory: UpgradeInventory,
): Promise<{ readonly healthy: boolean; readonly leader?: string; readonly detail: string }> {
  const cluster = await readCluster(clients, inventory);
  const leaders = cluster.members.filter((m) => isLeader(m) && isRunning(m));
  const health = await targetHealth(clients, 'write');
  const healthyTargets = inventory.backend.filter((n) => health.get(n.instanceId) === 'healthy');
  const detail =
    `Patroni: ${describeMembers(cluster)}; write endpoint healthy targets: ` +
    (healthyTargets.map((n) => n.name).join(', ') || 'none');
  const leader = leaders.length === 1 ? leaders[0].name : undefined;
  const healthy =
    leader !== undefined && healthyTargets.length === 1 && healthyTargets[0].name === leader;
  return { healthy, leader, detail };
}
