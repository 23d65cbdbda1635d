/**
 * The faults issue 17 names, each with the alarms it must raise and how it is
 * undone: the rig's alarm tests and the time-to-alarm benchmark run the same
 * ones. Undo returns once the cluster is whole again (healthy replication).
 */
import { Client } from 'pg';
import type { AlarmWatch } from './alarm-watch';
import type { RigCluster } from './cluster';
import { waitForHealthyReplication } from './patroni';

export interface AlarmFault {
  readonly name: string;
  /** The template alarms (construct paths) that must fire. */
  readonly alarms: readonly string[];
  cause(): Promise<void>;
  undo(): Promise<void>;
}

const DATA = '/var/lib/postgresql';
const FILLER = `${DATA}/alarm-fault.fill`;

/** backend-2 -> Backend2, as the construct ids of per-node alarms read. */
export const alarmIdOf = (node: string) =>
  node.replace(/(^|-)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());

async function roles(rig: RigCluster) {
  const members = await waitForHealthyReplication(rig);
  return {
    leader: members.find((m) => m.role === 'leader')!.name,
    replicas: members.filter((m) => m.role !== 'leader').map((m) => m.name),
  };
}

/** Inserts a row through the write endpoint every 200 ms until stopped (WAL for replay to lag on). */
function backgroundWrites(rig: RigCluster): { stop(): Promise<void> } {
  let running = true;
  const done = (async () => {
    const client = new Client({ ...rig.applicationConnection(), connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      await client.query('CREATE TABLE IF NOT EXISTS alarm_fault_writes (at timestamptz)');
      while (running) {
        await client.query('INSERT INTO alarm_fault_writes VALUES (now())');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    } finally {
      await client.end();
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/**
 * The faults in rounds: the faults of a round touch different nodes and may
 * run at the same time; each round leaves the cluster whole once undone. The
 * node each one picks is read from the cluster when it starts (and `rig` is
 * only called then: test files list the faults before their rig exists).
 */
export function alarmFaults(
  rig: () => RigCluster,
  dataVolumeThreshold: () => number,
): AlarmFault[][] {
  let idle: Client | undefined;
  let writes: { stop(): Promise<void> } | undefined;
  let held = '';
  let filled = '';
  let stopped = '';
  let killed = '';
  const idleTransaction: AlarmFault = {
    name: 'a transaction left open and idle',
    alarms: ['Monitoring/LongTransactionAlarm'],
    async cause() {
      idle = new Client({ ...rig().applicationConnection(), connectionTimeoutMillis: 5000 });
      await idle.connect();
      await idle.query('BEGIN; SELECT txid_current()');
    },
    async undo() {
      await idle?.query('COMMIT');
      await idle?.end();
    },
  };
  // Replay held by freezing the replica's startup (recovery) process while its
  // WAL receiver runs on: SELECT pg_wal_replay_pause() did not hold on the rig
  // (the replica read no replay delay while paused).
  const freezeReplay = (signal: 'STOP' | 'CONT') =>
    rig().execOk(held, ['pkill', `-${signal}`, '-f', '^postgres: .*startup']);
  const replayHeld: AlarmFault = {
    name: "a replica's replay held while writes go on",
    get alarms() {
      return [`Monitoring/${alarmIdOf(held)}ReplayDelayAlarm`];
    },
    async cause() {
      [held] = (await roles(rig())).replicas;
      writes = backgroundWrites(rig());
      await freezeReplay('STOP');
    },
    async undo() {
      await freezeReplay('CONT');
      await writes?.stop();
    },
  };
  const patroniStopped: AlarmFault = {
    name: 'Patroni stopped on a replica',
    alarms: ['Monitoring/MemberNotRunningAlarm'],
    async cause() {
      [stopped] = (await roles(rig())).replicas;
      await rig().execOk(stopped, ['systemctl', 'stop', 'patroni']);
    },
    async undo() {
      await rig().execOk(stopped, ['systemctl', 'start', 'patroni']);
      await waitForHealthyReplication(rig());
    },
  };
  const etcdStopped: AlarmFault = {
    name: 'one etcd member stopped',
    alarms: ['Monitoring/EtcdHealthAlarm'],
    async cause() {
      await rig().execOk('etcd-3', ['systemctl', 'stop', 'etcd']);
    },
    async undo() {
      await rig().execOk('etcd-3', ['systemctl', 'start', 'etcd']);
    },
  };
  const volumeFilled: AlarmFault = {
    name: "a replica's data volume filled past the threshold (a file on it)",
    alarms: ['Monitoring/DataVolumeAlarm'],
    async cause() {
      // The other replica than the one whose replay is held in the same round.
      filled = (await roles(rig())).replicas.at(-1)!;
      // Leave half the threshold free, as the collector's unprivileged user counts it.
      const [available, total, blockSize] = (
        await rig().execOk(filled, ['stat', '-f', '-c', '%a %b %S', DATA])
      )
        .trim()
        .split(' ')
        .map(Number);
      const blocks = available - Math.floor((total * dataVolumeThreshold()) / 200);
      await rig().execOk(filled, ['fallocate', '-l', String(blocks * blockSize), FILLER]);
    },
    async undo() {
      await rig().execOk(filled, ['rm', '-f', FILLER]);
    },
  };
  const runbookFailed: AlarmFault = {
    name: 'a runbook that fails (the failover runbook given a key it does not take)',
    alarms: ['PrimaryFailover/StateMachineFailedAlarm'],
    async cause() {
      const failed = await rig()
        .failover({ bogus: true })
        .then(
          () => undefined,
          (error: Error) => error,
        );
      if (!/bogus/.test(String(failed?.message))) {
        throw new Error(`the failover runbook did not refuse {"bogus": true}: ${failed?.message}`);
      }
    },
    async undo() {},
  };
  const primaryKilled: AlarmFault = {
    name: "the primary's node killed",
    get alarms() {
      const index = killed.split('-')[1];
      return [
        'Monitoring/MemberNotRunningAlarm',
        `Monitoring/${alarmIdOf(killed)}SilentAlarm`,
        `Backend/Nodes/Node${index}StatusCheckAlarm`,
      ];
    },
    async cause() {
      killed = (await roles(rig())).leader;
      await rig().host.kill(killed);
    },
    async undo() {
      // It boots again (its data volume from its fstab) and rejoins as a replica.
      await rig().reboot(killed);
      await waitForHealthyReplication(rig());
    },
  };
  return [
    [idleTransaction, replayHeld, etcdStopped, volumeFilled, runbookFailed],
    [patroniStopped],
    [primaryKilled],
  ];
}

export interface FaultTiming {
  readonly fault: string;
  readonly alarm: string;
  /** When the fault was caused (epoch ms). */
  readonly causedAt: number;
  /** From the fault to the alarm in ALARM. */
  readonly seconds: number;
}

/**
 * Causes every fault of a round, waits (each bounded by `timeoutMs`) for
 * each one's alarms to fire, undoes them all, then waits until every alarm
 * the rig feeds is OK again. Faults are undone even when an alarm never fires.
 */
export async function runFaultRound(
  watch: AlarmWatch,
  round: readonly AlarmFault[],
  timeoutMs: number,
): Promise<{ readonly timings: FaultTiming[]; readonly okSeconds: number }> {
  const caused: { fault: AlarmFault; at: number }[] = [];
  const timings: FaultTiming[] = [];
  try {
    for (const fault of round) {
      await fault.cause();
      caused.push({ fault, at: Date.now() });
    }
    for (const { fault, at } of caused) {
      for (const alarm of fault.alarms) {
        const ms = await watch.waitFor(alarm, 'ALARM', at, timeoutMs);
        timings.push({ fault: fault.name, alarm, causedAt: at, seconds: ms / 1000 });
      }
    }
  } finally {
    for (const { fault } of caused.reverse()) await fault.undo();
  }
  const okMs = await watch.allOk(timeoutMs);
  return { timings, okSeconds: okMs / 1000 };
}
