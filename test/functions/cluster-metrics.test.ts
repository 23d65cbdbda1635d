import { Metrics } from '@aws-lambda-powertools/metrics';
import { publishCluster, readCluster } from '../../functions/cluster-metrics/metrics';
import { backendsSetting } from '../../functions/cluster-metrics/handler';
import { CLUSTER_METRICS as M } from '../../functions/lib/metric-names';
import type { PatroniGet } from '../../functions/lib/patroni';
import type { PatroniStatus } from '../../functions/lib/replication';
import { LocalMetrics } from '../../rig/local-aws/cloudwatch';

const NOW = Date.parse('2026-12-04T12:00:00Z');
const BACKENDS = [1, 2, 3].map((n) => ({ name: `backend-${n}`, address: `10.40.${n + 2}.20` }));

/** Each member's own GET /patroni, or an error for one that does not answer. */
function patroni(answers: Record<string, PatroniStatus | Error>): PatroniGet {
  return async (address, path) => {
    const name = BACKENDS.find((b) => b.address === address)!.name;
    const answer = answers[name];
    if (path !== '/patroni' || answer instanceof Error || answer === undefined) {
      throw answer instanceof Error ? answer : new Error(`${address}${path} timed out`);
    }
    return answer;
  };
}

const seen = (secondsAgo: number) => NOW / 1000 - secondsAgo;
const PRIMARY: PatroniStatus = {
  state: 'running',
  role: 'primary',
  timeline: 3,
  dcs_last_seen: seen(2),
  xlog: { location: 1_000_000 },
};
const replica = (received: number, replayed: number, extra: Partial<PatroniStatus> = {}) => ({
  state: 'running',
  role: 'replica',
  timeline: 3,
  dcs_last_seen: seen(4),
  xlog: {
    received_location: received,
    replayed_location: replayed,
    replayed_timestamp: new Date(NOW - 90_000).toISOString(),
  },
  ...extra,
});

describe("the cluster as Patroni's REST API shows it", () => {
  test('Given a primary, a caught-up replica and one whose replay is held, then the held one reads its lag and delay', async () => {
    // Given backend-3 received everything but replayed 600 kB less, 90 s ago
    const reading = await readCluster(
      patroni({
        'backend-1': PRIMARY,
        'backend-2': replica(1_000_000, 1_000_000, { pending_restart: true }),
        'backend-3': replica(1_000_000, 400_000),
      }),
      BACKENDS,
      NOW,
    );
    // Then there is one primary, three running members and one pending restart
    expect(reading).toMatchObject({
      primaryCount: 1,
      membersRunning: 3,
      timeline: 3,
      pendingRestartMembers: 1,
      paused: false,
    });
    // And each member's figures: the primary's lag is 0, the held replica's 600 kB and 90 s
    expect(reading.members).toEqual([
      {
        name: 'backend-1',
        reachable: true,
        lagBytes: 0,
        replayDelaySeconds: 0,
        dcsLastSeenSeconds: 2,
      },
      {
        name: 'backend-2',
        reachable: true,
        lagBytes: 0,
        replayDelaySeconds: 0,
        dcsLastSeenSeconds: 4,
      },
      {
        name: 'backend-3',
        reachable: true,
        lagBytes: 600_000,
        replayDelaySeconds: 90,
        dcsLastSeenSeconds: 4,
      },
    ]);
  });

  test('Given the primary does not answer, then no primary, two running members and no replica lag', async () => {
    const reading = await readCluster(
      patroni({
        'backend-1': new Error('connect ETIMEDOUT'),
        'backend-2': replica(1_000_000, 1_000_000),
        'backend-3': replica(1_000_000, 1_000_000),
      }),
      BACKENDS,
      NOW,
    );
    expect(reading).toMatchObject({ primaryCount: 0, membersRunning: 2, timeline: undefined });
    // Without one leader there is nothing to measure against: no lag figure at all
    expect(reading.members.map((m) => [m.name, m.reachable, m.lagBytes])).toEqual([
      ['backend-1', false, undefined],
      ['backend-2', true, undefined],
      ['backend-3', true, undefined],
    ]);
  });

  test('Given two members answer as the primary, then the count says 2', async () => {
    const reading = await readCluster(
      patroni({ 'backend-1': PRIMARY, 'backend-2': PRIMARY, 'backend-3': replica(0, 0) }),
      BACKENDS,
      NOW,
    );
    expect(reading.primaryCount).toBe(2);
  });

  test('Given a stopped PostgreSQL under a running Patroni and a paused cluster, then it is not counted as running and paused reads 1', async () => {
    const reading = await readCluster(
      patroni({
        'backend-1': { ...PRIMARY, pause: true },
        'backend-2': { ...replica(0, 0), state: 'stopped' },
        'backend-3': replica(1_000_000, 1_000_000),
      }),
      BACKENDS,
      NOW,
    );
    expect(reading).toMatchObject({ membersRunning: 2, paused: true });
  });
});

describe('publishing', () => {
  /** What CloudWatch stores of the EMF lines the function prints. */
  const stored = (publish: (metrics: Metrics) => void) => {
    const cloudwatch = new LocalMetrics();
    const write = process.stdout.write;
    process.stdout.write = ((chunk: unknown) => {
      String(chunk)
        .split('\n')
        .filter(Boolean)
        .forEach((line) => expect(cloudwatch.recordEmf(line)).toBe(true));
      return true;
    }) as typeof process.stdout.write;
    try {
      publish(new Metrics({ namespace: M.namespace, serviceName: M.service }));
    } finally {
      process.stdout.write = write;
    }
    return cloudwatch;
  };

  test('Given a reading, then the cluster figures go out under the cluster and each member figure under its member', async () => {
    const reading = await readCluster(
      patroni({
        'backend-1': PRIMARY,
        'backend-2': replica(1_000_000, 1_000_000),
        'backend-3': new Error('timed out'),
      }),
      BACKENDS,
      NOW,
    );
    const cloudwatch = stored((metrics) => publishCluster(metrics, 'pem', reading));
    const cluster = { service: 'pem-ha', ClusterName: 'pem' };
    const value = (name: string, dimensions: Record<string, string>) =>
      cloudwatch.datapoints(name, dimensions).map((point) => point.value);
    expect(value(M.primaryCount, cluster)).toEqual([1]);
    expect(value(M.membersRunning, cluster)).toEqual([2]);
    expect(value(M.publisherRuns, cluster)).toEqual([1]);
    expect(value(M.dcsLastSeenSeconds, { ...cluster, Member: 'backend-2' })).toEqual([4]);
    expect(value(M.replicaLagBytes, { ...cluster, Member: 'backend-2' })).toEqual([0]);
    // The member that did not answer publishes nothing: its alarms see missing data
    expect(cloudwatch.datapoints(M.dcsLastSeenSeconds, { Member: 'backend-3' })).toEqual([]);
  });
});

describe('settings', () => {
  test.each([
    ['not JSON', 'backend-1'],
    ['an empty list', '[]'],
    ['an entry without an address', '[{"name":"backend-1"}]'],
  ])('Given BACKENDS as %s, then the error names the variable and what it must be', (_, raw) => {
    expect(() => backendsSetting({ BACKENDS: raw })).toThrow(
      `environment variable BACKENDS must be a JSON list of {"name", "address"}; got ${JSON.stringify(raw)}`,
    );
  });
});
