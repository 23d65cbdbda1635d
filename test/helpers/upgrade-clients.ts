/**
 * UpgradeClients for unit tests: mocked EC2 and NLB, and a Patroni whose
 * members answer GET /cluster and each its own GET /patroni, received and
 * replayed positions apart.
 */
import { DescribeInstancesCommand, EC2Client, InstanceStateName } from '@aws-sdk/client-ec2';
import {
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { mockClient } from 'aws-sdk-client-mock';
import type { PatroniAnswer, PatroniMember } from '../../functions/lib/patroni';
import type { UpgradeClients, UpgradeInventory } from '../../functions/upgrade/cluster';

export const backendNode = (name: string, i: number) => ({
  name,
  tier: 'backend' as const,
  instanceId: `i-0000000000000000${i}`,
  address: `10.0.0.${i}`,
});

export const INVENTORY: UpgradeInventory = {
  etcd: [],
  backend: [backendNode('backend-1', 1), backendNode('backend-2', 2), backendNode('backend-3', 3)],
  web: [],
};

export const NOW = Date.parse('2026-12-02T08:00:00Z');
/** The leader's WAL position in bytes. */
export const LOCATION = 100_000_000;

export const elb = mockClient(ElasticLoadBalancingV2Client);
export const ec2 = mockClient(EC2Client);

export interface ClientOptions {
  /** More /cluster fields: pause, scheduled_switchover. */
  readonly cluster?: Record<string, unknown>;
  /** Patroni's answer to every changing request. */
  readonly answer?: PatroniAnswer;
  /** Replicas whose replay stands behind what they received, since `delaySeconds` ago. */
  readonly replay?: Readonly<
    Record<string, { bytes: number; paused?: boolean; delaySeconds?: number }>
  >;
  /** Members whose REST API refuses connections. */
  readonly down?: readonly string[];
  /** No member answers GET /cluster. */
  readonly clusterDown?: boolean;
  /** EC2 states by node name; every inventory node running unless given. */
  readonly ec2States?: Readonly<Record<string, string>>;
}

export function upgradeClients(members: readonly PatroniMember[], options: ClientOptions = {}) {
  const sent: string[] = [];
  elb.on(DescribeTargetHealthCommand).resolves({
    TargetHealthDescriptions: [
      { Target: { Id: 'i-00000000000000001' }, TargetHealth: { State: 'healthy' } },
      { Target: { Id: 'i-00000000000000002' }, TargetHealth: { State: 'unhealthy' } },
    ],
  });
  ec2.on(DescribeInstancesCommand).resolves({
    Reservations: [
      {
        Instances: INVENTORY.backend.map((n) => ({
          InstanceId: n.instanceId,
          State: { Name: (options.ec2States?.[n.name] ?? 'running') as InstanceStateName },
          Tags: [{ Key: 'pem-ha:node', Value: n.name }],
        })),
      },
    ],
  });
  const nameOf = (address: string) => INVENTORY.backend.find((n) => n.address === address)?.name;
  const ownStatus = (member: PatroniMember) => {
    const state = member.state === 'streaming' ? 'running' : member.state;
    if (member.role === 'leader') {
      return { state, role: 'primary', timeline: member.timeline, xlog: { location: LOCATION } };
    }
    const received = LOCATION - (typeof member.lag === 'number' ? member.lag : 0);
    const replay = options.replay?.[member.name];
    return {
      state,
      role: 'replica',
      timeline: member.timeline,
      xlog: {
        received_location: received,
        replayed_location: received - (replay?.bytes ?? 0),
        replayed_timestamp: new Date(NOW - (replay?.delaySeconds ?? 3600) * 1000).toISOString(),
        paused: replay?.paused ?? false,
      },
    };
  };
  const value: UpgradeClients = {
    ec2: new EC2Client({ region: 'local-1' }),
    elb: new ElasticLoadBalancingV2Client({ region: 'local-1' }),
    patroniGet: async (address, path) => {
      const name = nameOf(address);
      if (!name || options.down?.includes(name)) {
        throw new Error(`connect ECONNREFUSED ${address}:8008`);
      }
      if (path === '/cluster') {
        if (options.clusterDown) throw new Error(`${address}:8008/cluster answered 503`);
        return { members, ...options.cluster };
      }
      const member = members.find((m) => m.name === name);
      if (!member) throw new Error(`connect ECONNREFUSED ${address}:8008`);
      return ownStatus(member);
    },
    patroniSend: async (address, method, path, body) => {
      sent.push(`${method} ${address}${path} ${JSON.stringify(body ?? null)}`);
      return options.answer ?? { status: 200, body: 'Successfully switched over to "backend-2"' };
    },
    targetGroups: { write: 'write', read: 'read' },
    clusterName: 'pem-ha',
    now: () => NOW,
  };
  return { value, sent };
}

/** One leader on timeline 1, two replicas caught up; backend-3 the synchronous standby. */
export const HEALTHY: PatroniMember[] = [
  { name: 'backend-1', role: 'leader', state: 'running', timeline: 1 },
  { name: 'backend-2', role: 'replica', state: 'running', timeline: 1, lag: 0 },
  { name: 'backend-3', role: 'sync_standby', state: 'running', timeline: 1, lag: 16 },
];
