import { ClusterUnhealthyError, LeaderChangedError, LeaderSnapshot } from '../lib/cluster-errors';
import type { ClusterInventory, NodeAddress } from '../lib/inventory';
import { PatroniCluster, PatroniGet, readPatroniCluster } from '../lib/patroni';
import { healthGate, inspectHealth, judgeReplica } from '../lib/replication';
import { ErrorName, PemHaError } from '../lib/errors';
import { InvalidRequestError } from '../lib/ssm-run';

// Shared with the upgrade function through functions/lib; re-exported for callers of this module.
export { ClusterUnhealthyError, LeaderChangedError };
export type { LeaderSnapshot };

export interface RotationPlan extends LeaderSnapshot {
  /** etcd members, replicas, the primary, web hosts: one at a time in this order. */
  readonly order: readonly NodeAddress[];
}

/**
 * A root rollover has begun and not finished: leaves signed now would chain
 * to a root some nodes do not trust yet, so only the rollover itself may sign.
 */
export class RootRolloverInProgressError extends PemHaError {
  constructor() {
    super(
      ErrorName.RootRolloverInProgress,
      'a root rollover is in progress (two roots trusted); run the root rollover runbook to its end first',
    );
  }
}

const describe = (cluster: PatroniCluster) =>
  cluster.members.map((m) => `${m.name} ${m.role}/${m.state}`).join(', ') || 'no members';

/** One leader, every inventory backend a running member: the snapshot of it. */
function healthySnapshot(
  cluster: PatroniCluster,
  backends: readonly NodeAddress[],
): LeaderSnapshot {
  const leaders = cluster.members.filter((m) => m.role === 'leader');
  if (leaders.length !== 1) {
    throw new ClusterUnhealthyError(`${leaders.length} leaders (${describe(cluster)})`);
  }
  for (const node of backends) {
    const member = cluster.members.find((m) => m.name === node.name);
    // Patroni 3.0 reports replicas as "running", later releases as "streaming".
    if (!member || !['running', 'streaming'].includes(member.state)) {
      throw new ClusterUnhealthyError(
        `${node.name} is not a running member (${describe(cluster)})`,
      );
    }
  }
  const timeline = leaders[0].timeline;
  if (typeof timeline !== 'number') {
    throw new ClusterUnhealthyError(`the leader ${leaders[0].name} reports no timeline`);
  }
  return { leader: leaders[0].name, timeline };
}

/**
 * Reads the cluster before a rolling change (the health gate: one leader,
 * every backend answering, running and caught up by the replay rule) and
 * orders the nodes: the primary last of the backends.
 */
export async function planRotation(
  get: PatroniGet,
  inventory: ClusterInventory<NodeAddress>,
  options: { readonly maxLagBytes: number; readonly now?: () => number },
): Promise<RotationPlan> {
  const snapshot = await healthGate(get, inventory, options);
  const replicas = inventory.backend.filter((n) => n.name !== snapshot.leader);
  const leader = inventory.backend.filter((n) => n.name === snapshot.leader);
  return { ...snapshot, order: [...inventory.etcd, ...replicas, ...leader, ...inventory.web] };
}

/** After the change: same leader, same timeline, every backend running again. */
export async function confirmLeaderUnchanged(
  get: PatroniGet,
  inventory: ClusterInventory<NodeAddress>,
  before: LeaderSnapshot,
): Promise<LeaderSnapshot> {
  const cluster = await readPatroniCluster(
    get,
    inventory.backend.map((n) => n.address),
  );
  const leaders = cluster.members.filter((m) => m.role === 'leader');
  const now = {
    leader: leaders.map((m) => m.name).join('+') || 'none',
    timeline: leaders[0]?.timeline ?? -1,
  };
  if (now.leader !== before.leader || now.timeline !== before.timeline) {
    throw new LeaderChangedError(before, now);
  }
  return healthySnapshot(cluster, inventory.backend);
}

/** The inventory's entry for the leader Patroni names; ClusterUnhealthyError when it has none. */
function inventoryEntryOf<N extends NodeAddress>(
  inventory: ClusterInventory<N>,
  leader: string,
): N {
  const entry = inventory.backend.find((n) => n.name === leader);
  if (!entry) {
    throw new ClusterUnhealthyError(
      `the leader ${leader} is not one of the stack's backends (${inventory.backend.map((n) => n.name).join(', ')})`,
    );
  }
  return entry;
}

export interface LeaderLocation<N extends NodeAddress = NodeAddress> {
  /** The inventory's entry for the leader, as given (so with its instance id). */
  readonly leader: N;
  readonly timeline: number;
}

/**
 * Finds the one leader among the inventory's backends, whatever the replicas'
 * state: a backup runs on the primary even with a replica down.
 */
export async function locateLeader<N extends NodeAddress>(
  get: PatroniGet,
  inventory: ClusterInventory<N>,
): Promise<LeaderLocation<N>> {
  const cluster = await readPatroniCluster(
    get,
    inventory.backend.map((n) => n.address),
  );
  const leaders = cluster.members.filter((m) => m.role === 'leader');
  if (leaders.length !== 1) {
    throw new ClusterUnhealthyError(`${leaders.length} leaders (${describe(cluster)})`);
  }
  const leader = inventoryEntryOf(inventory, leaders[0].name);
  const timeline = leaders[0].timeline;
  if (typeof timeline !== 'number') {
    throw new ClusterUnhealthyError(`the leader ${leader.name} reports no timeline`);
  }
  return { leader, timeline };
}

export interface BackupSource<N extends NodeAddress = NodeAddress> extends LeaderSnapshot {
  /** The inventory's entry of the member the backup is taken on. */
  readonly node: N;
  /** `replica`: files are read there, the primary only starts and stops the backup. */
  readonly from: 'replica' | 'primary';
  /** Why this member: the replica's lag, or why no replica qualified. */
  readonly reason: string;
}

/**
 * Where the backup runbook takes a backup: a replica caught up by the replay
 * rule (an asynchronous one first, so the synchronous standby's disk serves
 * commits, then the least behind), or the primary when none is. Throws
 * ClusterUnhealthyError only when there is no single leader.
 */
export async function chooseBackupSource<N extends NodeAddress>(
  get: PatroniGet,
  inventory: ClusterInventory<N>,
  options: { readonly maxLagBytes: number; readonly now?: () => number },
): Promise<BackupSource<N>> {
  const report = await inspectHealth(get, inventory, options);
  const members = report.cluster instanceof Error ? [] : report.cluster.members;
  const isSync = (name: string) =>
    members.some((m) => m.name === name && m.role === 'sync_standby');
  const verdicts = report.view.replicas.map((progress) => ({
    progress,
    verdict: judgeReplica(progress, options.maxLagBytes),
  }));
  const candidates = verdicts
    .filter(
      ({ progress, verdict }) => verdict.caughtUp && members.some((m) => m.name === progress.name),
    )
    .sort(
      (a, b) =>
        Number(isSync(a.progress.name)) - Number(isSync(b.progress.name)) ||
        (a.progress.replayLagBytes ?? 0) - (b.progress.replayLagBytes ?? 0),
    );
  const entry = (name: string) => inventory.backend.find((n) => n.name === name);
  const chosen = candidates.find(({ progress }) => entry(progress.name));
  const snapshot = { leader: report.leader, timeline: report.timeline };
  if (chosen) {
    return {
      ...snapshot,
      node: entry(chosen.progress.name)!,
      from: 'replica',
      reason: chosen.verdict.detail,
    };
  }
  const leader = inventoryEntryOf(inventory, report.leader);
  const why = verdicts.map(({ verdict }) => verdict.detail).join('; ') || 'no replica answers';
  return { ...snapshot, node: leader, from: 'primary', reason: `no replica qualifies: ${why}` };
}

/** The gate's `before`, checked before anything is read: InvalidRequestError names what was given. */
export function checkSnapshot(before: unknown): LeaderSnapshot {
  const snapshot = before as Partial<LeaderSnapshot> | undefined;
  if (typeof snapshot?.leader !== 'string' || !Number.isInteger(snapshot.timeline)) {
    throw new InvalidRequestError(
      `before must be {"leader": <name>, "timeline": <number>}; given ${JSON.stringify(before)}`,
    );
  }
  return snapshot as LeaderSnapshot;
}
