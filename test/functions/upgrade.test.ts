import { EC2Client } from '@aws-sdk/client-ec2';
import {
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { mockClient } from 'aws-sdk-client-mock';
import type { PatroniMember } from '../../functions/lib/patroni';
import type { UpgradeClients, UpgradeInventory } from '../../functions/upgrade/cluster';
import { parseKeyValues, planUpgrade, upstreamVersion } from '../../functions/upgrade/plan';
import { halt, switchover } from '../../functions/upgrade/steps';

const node = (name: string, i: number) => ({
  name,
  tier: 'backend' as const,
  instanceId: `i-0000000000000000${i}`,
  address: `10.0.0.${i}`,
});
const inventory: UpgradeInventory = {
  etcd: [],
  backend: [node('backend-1', 1), node('backend-2', 2), node('backend-3', 3)],
  web: [],
};
const elb = mockClient(ElasticLoadBalancingV2Client);
afterEach(() => elb.reset());

function clients(
  members: PatroniMember[],
  extra: Record<string, unknown> = {},
  answer = { status: 200, body: 'Successfully switched over to "backend-2"' },
) {
  const sent: string[] = [];
  elb.on(DescribeTargetHealthCommand).resolves({
    TargetHealthDescriptions: [
      { Target: { Id: 'i-00000000000000001' }, TargetHealth: { State: 'healthy' } },
      { Target: { Id: 'i-00000000000000002' }, TargetHealth: { State: 'unhealthy' } },
    ],
  });
  const value: UpgradeClients = {
    ec2: new EC2Client({ region: 'local-1' }),
    elb: new ElasticLoadBalancingV2Client({ region: 'local-1' }),
    patroniGet: async () => ({ members, ...extra }),
    patroniSend: async (address, method, path, body) => {
      sent.push(`${method} ${address}${path} ${JSON.stringify(body ?? null)}`);
      return answer;
    },
    targetGroups: { write: 'write', read: 'read' },
    clusterName: 'pem-ha',
  };
  return { value, sent };
}

const healthy: PatroniMember[] = [
  { name: 'backend-1', role: 'leader', state: 'running', timeline: 1 },
  { name: 'backend-2', role: 'replica', state: 'running', timeline: 1, lag: 0 },
  { name: 'backend-3', role: 'sync_standby', state: 'running', timeline: 1, lag: 16 },
];

describe('upgrade steps', () => {
  test('Given synchronous mode, when it switches over, then the synchronous standby is the candidate', async () => {
    const { value, sent } = clients(healthy);
    const result = await switchover(value, inventory, 'backend-1');
    expect(result.candidate).toBe('backend-3');
    expect(sent).toEqual([
      'POST 10.0.0.1/switchover {"leader":"backend-1","candidate":"backend-3"}',
    ]);
  });

  test('Given Patroni answers 503 "status unknown", then the switchover is not a failure (the leader loop decides)', async () => {
    const { value } = clients(healthy, {}, { status: 503, body: 'Switchover status unknown' });
    await expect(switchover(value, inventory, 'backend-1')).resolves.toMatchObject({
      candidate: 'backend-3',
    });
  });

  test.each([
    [{ status: 200, body: 'Switched over to "backend-2" instead of "backend-3"' }, 'instead of'],
    [{ status: 412, body: 'candidate name does not match' }, 'refused the switchover (412)'],
  ])('Given Patroni answers %j, then SwitchoverFailedError', async (answer, message) => {
    const { value } = clients(healthy, {}, answer);
    const error = await switchover(value, inventory, 'backend-1').catch((e: Error) => e);
    expect(error).toMatchObject({ name: 'SwitchoverFailedError' });
    expect((error as Error).message).toContain(message);
  });

  test('Given the leader is not the planned one, then nothing is sent', async () => {
    const { value, sent } = clients(healthy);
    await expect(switchover(value, inventory, 'backend-2')).rejects.toMatchObject({
      name: 'SwitchoverFailedError',
    });
    expect(sent).toEqual([]);
  });

  test('Given a paused cluster with a scheduled switchover, when halting, then both are undone and one healthy primary is reported', async () => {
    const { value, sent } = clients(healthy, { pause: true, scheduled_switchover: { at: 'x' } });
    const result = await halt(value, inventory);
    expect(sent).toEqual([
      'DELETE 10.0.0.1/switchover null',
      'PATCH 10.0.0.1/config {"pause":false}',
    ]);
    expect(result).toEqual({
      healthyPrimary: true,
      summary:
        'cancelled the scheduled switchover; resumed Patroni; one healthy primary, backend-1',
    });
  });

  test('Given the write endpoint routes to no one, when halting, then it says so', async () => {
    const { value } = clients(healthy);
    elb.on(DescribeTargetHealthCommand).resolves({ TargetHealthDescriptions: [] });
    const result = await halt(value, inventory);
    expect(result.healthyPrimary).toBe(false);
    expect(result.summary).toContain('NO single healthy primary');
  });
});

describe('upgrade plan', () => {
  const preflight = {
    request: {
      component: 'postgresql' as const,
      version: 'latest',
      maxLagBytes: 1000,
      maxTransactionSeconds: 60,
      dryRun: false,
    },
    leader: 'backend-1',
    timeline: 1,
    replicaOrder: ['backend-3', 'backend-2'],
    checkNodes: inventory.backend,
  };
  const check = (name: string, lines: string) => ({
    name,
    stdout: `[pem-ha 10:00:00] log\n${lines}`,
  });

  test('Given every node resolves latest to one version, then the plan pins it and keeps the order', () => {
    const plan = planUpgrade(inventory, preflight, [
      check(
        'backend-1',
        'target=15.20-0+deb12u1\ninstalled=15.18-0+deb12u1\noldest_transaction_seconds=5\nrunning=15.18',
      ),
      check(
        'backend-2',
        'target=15.20-0+deb12u1\ninstalled=15.20-0+deb12u1\nrunning=15.20\nrunning_stale=false\ndrained=false',
      ),
      check('backend-3', 'target=15.20-0+deb12u1\ninstalled=15.18-0+deb12u1\nrunning=15.18'),
    ]);
    expect(plan.settings.version).toBe('15.20-0+deb12u1');
    expect(plan.replicas.map((n) => n.name)).toEqual(['backend-3']);
    expect(plan.primary.map((n) => n.name)).toEqual(['backend-1']);
    expect(plan.alreadyAtTarget).toEqual(['backend-2']);
  });

  test('Given nodes that resolve latest differently, then PreflightFailedError names them', () => {
    expect(() =>
      planUpgrade(inventory, preflight, [
        check('backend-1', 'target=15.20-0+deb12u1'),
        check('backend-2', 'target=15.19-0+deb12u1'),
        check('backend-3', 'target=15.20-0+deb12u1'),
      ]),
    ).toThrow(/do not resolve latest to one version \(backend-1 15.20-0\+deb12u1, backend-2 15.19/);
  });

  test('Given a transaction older than the bound on the primary, then PreflightFailedError', () => {
    expect(() =>
      planUpgrade(inventory, preflight, [
        check('backend-1', 'target=1\noldest_transaction_seconds=61'),
        check('backend-2', 'target=1'),
        check('backend-3', 'target=1'),
      ]),
    ).toThrow('open 61 s (maxTransactionSeconds 60)');
  });

  test('Given a node upgraded but still drained, then it is planned again (so it returns to the read endpoint)', () => {
    const plan = planUpgrade(inventory, preflight, [
      check('backend-1', 'target=2-1\ninstalled=2-1\nrunning=2'),
      check('backend-2', 'target=2-1\ninstalled=2-1\nrunning=2\ndrained=true'),
      check('backend-3', 'target=2-1\ninstalled=2-1\nrunning=2'),
    ]);
    expect(plan.replicas.map((n) => n.name)).toEqual(['backend-2']);
    expect(plan.switchover).toBe(false);
  });

  test('Debian versions reduce to what programs report', () => {
    expect(upstreamVersion('1:15.20-0+deb12u1')).toBe('15.20');
    expect(upstreamVersion('15.10-1.pgdg120+1')).toBe('15.10');
    expect(parseKeyValues('noise\nkey=a=b\n')).toEqual({ key: 'a=b' });
  });
});
