import { ClusterUnhealthyError, LeaderChangedError } from '../../functions/lib/cluster-errors';
import type { PatroniGet } from '../../functions/lib/patroni';
import {
  healthGate,
  judgeReplica,
  PatroniStatus,
  readMemberStatuses,
  replicaProgress,
} from '../../functions/lib/replication';

const NOW = Date.parse('2026-12-02T08:00:00Z');
const LOCATION = 700_000_000;
const MAX = 1048576;
const backend = (name: string, i: number) => ({ name, address: `10.0.${i}.20` });
const INVENTORY = {
  backend: [backend('backend-1', 1), backend('backend-2', 2), backend('backend-3', 3)],
};

const leader: PatroniStatus = {
  state: 'running',
  role: 'primary',
  timeline: 2,
  xlog: { location: LOCATION },
};
const replica = (xlog: PatroniStatus['xlog'] = {}, more: PatroniStatus = {}): PatroniStatus => ({
  state: 'running',
  role: 'replica',
  timeline: 2,
  xlog: {
    received_location: LOCATION,
    replayed_location: LOCATION,
    replayed_timestamp: '2026-12-02 07:00:00.000000+00:00',
    paused: false,
    ...xlog,
  },
  ...more,
});
/** The replica: the WAL receiver kept up, replay froze 41 s ago. */
const frozen = replica({
  replayed_location: LOCATION - 57794208,
  replayed_timestamp: '2026-12-02 07:59:19.000000+00:00',
});

/** Each backend's own /patroni as given (an Error is a failed request), and /cluster. */
function patroni(
  statuses: Record<string, PatroniStatus | Error>,
  clusterLeader = 'backend-1',
): PatroniGet {
  return async (address, path) => {
    const name = INVENTORY.backend.find((n) => n.address === address)!.name;
    const status = statuses[name];
    if (status instanceof Error) throw status;
    if (path === '/cluster') {
      return {
        members: Object.keys(statuses).map((member) => ({
          name: member,
          role: member === clusterLeader ? 'leader' : 'replica',
          state: 'running',
        })),
      };
    }
    return status;
  };
}

describe('the replay rule', () => {
  test('Given a replica whose replay is frozen while it keeps receiving, then it is not caught up and the reason names it and both figures', () => {
    const verdict = judgeReplica(replicaProgress('backend-3', frozen, leader, NOW), MAX);
    expect(verdict).toEqual({
      caughtUp: false,
      detail:
        'backend-3 replays 57794208 bytes behind the leader (receives 0 bytes behind; replay delay 41 s; maxLagBytes 1048576)',
    });
  });

  test('Given a paused replay, then it is not caught up even within the bound', () => {
    const paused = replica({ paused: true, replayed_location: LOCATION - 10 });
    const verdict = judgeReplica(replicaProgress('backend-3', paused, leader, NOW), MAX);
    expect(verdict.caughtUp).toBe(false);
    expect(verdict.detail).toBe(
      "backend-3's replay is paused (pg_wal_replay_pause): it replays 10 bytes behind the leader, receives 0 bytes behind",
    );
  });

  test('Given an idle replica that replayed everything it received an hour ago, then the replay delay is 0 and it is caught up', () => {
    const progress = replicaProgress(
      'backend-2',
      replica({ received_location: LOCATION - 100, replayed_location: LOCATION - 100 }),
      leader,
      NOW,
    );
    expect(progress).toMatchObject({
      receiveLagBytes: 100,
      replayLagBytes: 100,
      replayDelaySeconds: 0,
    });
    expect(judgeReplica(progress, MAX)).toEqual({
      caughtUp: true,
      detail:
        'backend-2 receives 100 and replays 100 bytes behind the leader (replay delay 0 s; maxLagBytes 1048576)',
    });
  });

  test('Given a replica ahead of the leader reading (positions read moments apart), then its lag is floored at 0', () => {
    const ahead = replica({ received_location: LOCATION + 500, replayed_location: LOCATION + 500 });
    expect(replicaProgress('backend-2', ahead, leader, NOW)).toMatchObject({
      receiveLagBytes: 0,
      replayLagBytes: 0,
    });
  });

  test('Given replay behind with no replayed transaction yet, then the delay is unknown but the lag still refuses', () => {
    const progress = replicaProgress(
      'backend-2',
      replica({ replayed_location: LOCATION - 2 * MAX, replayed_timestamp: null }),
      leader,
      NOW,
    );
    expect(progress.replayDelaySeconds).toBeNull();
    expect(judgeReplica(progress, MAX).detail).toBe(
      'backend-2 replays 2097152 bytes behind the leader (receives 0 bytes behind; replay delay unknown; maxLagBytes 1048576)',
    );
  });

  test.each([
    [replica({}, { timeline: 1 }), 'backend-2 is on timeline 1, the leader on 2'],
    [{ state: 'stopped', role: 'replica' }, 'backend-2 is not a running member (state stopped)'],
    [
      replica({ received_location: LOCATION - 2 * MAX, replayed_location: LOCATION }),
      'backend-2 receives 2097152 bytes behind the leader (replays 0 bytes behind',
    ],
  ])('Given %j, then it is refused: %s', (status, detail) => {
    const verdict = judgeReplica(replicaProgress('backend-2', status, leader, NOW), MAX);
    expect(verdict.caughtUp).toBe(false);
    expect(verdict.detail).toContain(detail);
  });
});

describe('reading each member', () => {
  test('Given three backends, then each is asked GET /patroni at its own address, all at once, and a failure is recorded', async () => {
    const started: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const get: PatroniGet = async (address, path) => {
      started.push(`${address}${path}`);
      await gate;
      if (address === '10.0.3.20') throw new Error('connect ECONNREFUSED\n10.0.3.20:8008');
      return replica();
    };
    const reading = readMemberStatuses(get, INVENTORY.backend);
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toEqual(['10.0.1.20/patroni', '10.0.2.20/patroni', '10.0.3.20/patroni']);
    release();
    const members = await reading;
    expect(members[2]).toEqual({
      name: 'backend-3',
      reachable: false,
      error: 'connect ECONNREFUSED 10.0.3.20:8008',
    });
  });
});

describe('healthGate', () => {
  const options = { maxLagBytes: MAX, now: () => NOW };

  test('Given one leader and caught-up replicas, then it returns the leader and timeline', async () => {
    const get = patroni({ 'backend-1': leader, 'backend-2': replica(), 'backend-3': replica() });
    await expect(healthGate(get, INVENTORY, options)).resolves.toEqual({
      leader: 'backend-1',
      timeline: 2,
    });
  });

  test('Given a member whose REST API fails, then ClusterUnhealthyError names it with the error text', async () => {
    const get = patroni({
      'backend-1': leader,
      'backend-2': new Error('10.0.2.20:8008/patroni timed out'),
      'backend-3': replica(),
    });
    const run = healthGate(get, INVENTORY, options);
    await expect(run).rejects.toThrow(ClusterUnhealthyError);
    await expect(run).rejects.toThrow(
      'the cluster is not healthy: backend-2 is unreachable: GET /patroni failed (10.0.2.20:8008/patroni timed out)',
    );
  });

  test('Given two problems, then the message names both members', async () => {
    const paused = replica({ paused: true });
    const get = patroni({ 'backend-1': leader, 'backend-2': paused, 'backend-3': frozen });
    await expect(healthGate(get, INVENTORY, options)).rejects.toThrow(
      "the cluster is not healthy: backend-2's replay is paused (pg_wal_replay_pause): it replays 0 bytes behind the leader, receives 0 bytes behind; " +
        'backend-3 replays 57794208 bytes behind the leader (receives 0 bytes behind; replay delay 41 s; maxLagBytes 1048576)',
    );
  });

  test('Given the leader changed since the snapshot, then LeaderChangedError', async () => {
    const get = patroni(
      { 'backend-1': replica(), 'backend-2': leader, 'backend-3': replica() },
      'backend-2',
    );
    const run = healthGate(get, INVENTORY, {
      ...options,
      before: { leader: 'backend-1', timeline: 1 },
    });
    await expect(run).rejects.toThrow(LeaderChangedError);
    await expect(run).rejects.toThrow(
      'before backend-1 on timeline 1, now backend-2 on timeline 2',
    );
  });

  test('Given the same leader on a new timeline, then LeaderChangedError', async () => {
    const get = patroni({ 'backend-1': leader, 'backend-2': replica(), 'backend-3': replica() });
    await expect(
      healthGate(get, INVENTORY, { ...options, before: { leader: 'backend-1', timeline: 1 } }),
    ).rejects.toMatchObject({ name: 'LeaderChangedError' });
  });

  test.each([
    [
      'no member answers as the primary',
      { 'backend-1': replica(), 'backend-2': replica(), 'backend-3': replica() },
      '0 leaders (backend-1 replica/running, backend-2 replica/running, backend-3 replica/running)',
    ],
    [
      'two members answer as the primary (3.x says master)',
      { 'backend-1': leader, 'backend-2': { ...leader, role: 'master' }, 'backend-3': replica() },
      '2 leaders',
    ],
  ])('Given %s, then ClusterUnhealthyError', async (_, statuses, message) => {
    await expect(healthGate(patroni(statuses), INVENTORY, options)).rejects.toThrow(message);
  });

  test('Given /cluster names another leader than the member answering as the primary, then ClusterUnhealthyError says so', async () => {
    const get = patroni(
      { 'backend-1': leader, 'backend-2': replica(), 'backend-3': replica() },
      'backend-3',
    );
    await expect(healthGate(get, INVENTORY, options)).rejects.toThrow(
      "Patroni's /cluster names backend-3 the leader, but backend-1 answers as the primary",
    );
  });
});
