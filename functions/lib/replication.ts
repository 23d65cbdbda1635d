import { ClusterUnhealthyError, LeaderChangedError, LeaderSnapshot } from './cluster-errors';
import { PatroniCluster, PatroniGet, readPatroniCluster } from './patroni';

/**
 * GET /patroni as Patroni 3.0 and 4.0 answer it (api.py, get_postgresql_status):
 * the fields read here. Patroni's /cluster `lag` counts WAL *received*, so a
 * replica whose replay is stuck reads 0 there; only a member's own /patroni
 * tells received and replayed positions apart.
 */
export interface PatroniStatus {
  /** PostgreSQL's state: `running`, `stopped`, `starting`, ... */
  readonly state?: string;
  /** `master` (3.x) or `primary` (4.x) on the leader; `replica` or `standby_leader` otherwise. */
  readonly role?: string;
  readonly timeline?: number;
  readonly sync_standby?: boolean;
  /** Epoch seconds of this member's last successful read of the DCS (Patroni 2.1+). */
  readonly dcs_last_seen?: number;
  /** A changed parameter waits for a PostgreSQL restart. */
  readonly pending_restart?: boolean;
  /** The cluster is in maintenance mode: Patroni takes no automatic action. */
  readonly pause?: boolean;
  readonly xlog?: {
    /** The leader's current WAL position, in bytes. */
    readonly location?: number;
    readonly received_location?: number;
    readonly replayed_location?: number;
    /** The last replayed transaction's commit time; null before any was replayed. */
    readonly replayed_timestamp?: string | null;
    readonly paused?: boolean;
  };
}

export interface BackendAddress {
  readonly name: string;
  readonly address: string;
}

/** One backend's own answer to GET /patroni, or why it gave none. */
export type MemberStatus =
  | { readonly name: string; readonly reachable: true; readonly status: PatroniStatus }
  | { readonly name: string; readonly reachable: false; readonly error: string };

/** How far one replica is behind the leader, from both members' /patroni. */
export interface ReplicaProgress {
  readonly name: string;
  readonly state: string;
  readonly timeline?: number;
  readonly leaderTimeline?: number;
  /** Leader location − received location, floored at 0; null when a position is unknown. */
  readonly receiveLagBytes: number | null;
  /** Leader location − replayed location, floored at 0; null when a position is unknown. */
  readonly replayLagBytes: number | null;
  /** How long replay has stood behind what was received; null when unknown. */
  readonly replayDelaySeconds: number | null;
  readonly paused: boolean;
}

export interface ReplicationView {
  readonly members: readonly MemberStatus[];
  /** Members that answer as the primary: exactly one when healthy. */
  readonly leaders: readonly string[];
  /** Every other reachable member, measured against the leader (empty unless one leader). */
  readonly replicas: readonly ReplicaProgress[];
}

export const answersAsPrimary = (status: PatroniStatus) =>
  status.role === 'master' || status.role === 'primary';

/** Patroni 3.0 reports replicas as "running", later /cluster answers as "streaming". */
export const isRunningState = (state: string | undefined) =>
  state === 'running' || state === 'streaming';

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

/** GET /patroni from each backend's own address, in parallel; a failure is recorded, not thrown. */
export function readMemberStatuses(
  get: PatroniGet,
  backends: readonly BackendAddress[],
): Promise<MemberStatus[]> {
  return Promise.all(
    backends.map(async ({ name, address }): Promise<MemberStatus> => {
      try {
        const status = (await get(address, '/patroni')) as PatroniStatus;
        if (typeof status !== 'object' || status === null) {
          throw new Error(`${address}: GET /patroni did not answer an object`);
        }
        return { name, reachable: true, status };
      } catch (error) {
        return { name, reachable: false, error: oneLine((error as Error).message) };
      }
    }),
  );
}

/** One replica's lag behind the leader; `now` in epoch milliseconds. */
export function replicaProgress(
  name: string,
  replica: PatroniStatus,
  leader: PatroniStatus,
  now: number,
): ReplicaProgress {
  const location = leader.xlog?.location;
  const received = replica.xlog?.received_location;
  const replayed = replica.xlog?.replayed_location;
  const behind = (position: number | undefined) =>
    typeof location === 'number' && typeof position === 'number'
      ? Math.max(0, location - position)
      : null;
  const replayLagBytes = behind(replayed);
  let replayDelaySeconds: number | null = 0;
  if (replayLagBytes !== 0 && (received === undefined || received !== replayed)) {
    const replayedAt = Date.parse(replica.xlog?.replayed_timestamp ?? '');
    replayDelaySeconds = Number.isNaN(replayedAt)
      ? null
      : Math.max(0, Math.round((now - replayedAt) / 1000));
  }
  return {
    name,
    state: replica.state ?? 'unknown',
    timeline: replica.timeline,
    leaderTimeline: leader.timeline,
    receiveLagBytes: behind(received),
    replayLagBytes,
    replayDelaySeconds,
    paused: replica.xlog?.paused === true,
  };
}

/** Every backend's own /patroni; the replicas measured against the single leader's location. */
export async function readReplication(
  get: PatroniGet,
  backends: readonly BackendAddress[],
  now: number = Date.now(),
): Promise<ReplicationView> {
  const members = await readMemberStatuses(get, backends);
  const leaders = members.flatMap((m) =>
    m.reachable && answersAsPrimary(m.status) ? [{ name: m.name, status: m.status }] : [],
  );
  const leader = leaders.length === 1 ? leaders[0] : undefined;
  const replicas = leader
    ? members.flatMap((m) =>
        m.reachable && m.name !== leader.name
          ? [replicaProgress(m.name, m.status, leader.status, now)]
          : [],
      )
    : [];
  return { members, leaders: leaders.map((m) => m.name), replicas };
}

const bytes = (value: number | null) => (value === null ? 'an unknown number of' : String(value));
const delay = (seconds: number | null) =>
  seconds === null ? 'replay delay unknown' : `replay delay ${seconds} s`;

/**
 * The replay rule: running, on the leader's timeline, receiving AND
 * replaying within maxLagBytes, replay not paused. The detail names the
 * member and both figures either way.
 */
export function judgeReplica(
  progress: ReplicaProgress,
  maxLagBytes: number,
): { readonly caughtUp: boolean; readonly detail: string } {
  const { name, receiveLagBytes: receive, replayLagBytes: replay } = progress;
  const refuse = (detail: string) => ({ caughtUp: false, detail });
  if (!isRunningState(progress.state)) {
    return refuse(`${name} is not a running member (state ${progress.state})`);
  }
  if (progress.timeline !== progress.leaderTimeline) {
    return refuse(
      `${name} is on timeline ${progress.timeline ?? 'unknown'}, the leader on ${progress.leaderTimeline ?? 'unknown'}`,
    );
  }
  if (progress.paused) {
    return refuse(
      `${name}'s replay is paused (pg_wal_replay_pause): it replays ${bytes(replay)} bytes behind the leader, receives ${bytes(receive)} bytes behind`,
    );
  }
  const limit = `${delay(progress.replayDelaySeconds)}; maxLagBytes ${maxLagBytes}`;
  if (replay === null || replay > maxLagBytes) {
    return refuse(
      `${name} replays ${bytes(replay)} bytes behind the leader (receives ${bytes(receive)} bytes behind; ${limit})`,
    );
  }
  if (receive === null || receive > maxLagBytes) {
    return refuse(
      `${name} receives ${bytes(receive)} bytes behind the leader (replays ${replay} bytes behind; ${limit})`,
    );
  }
  return {
    caughtUp: true,
    detail: `${name} receives ${receive} and replays ${replay} bytes behind the leader (${limit})`,
  };
}

/** `backend-1 primary/running, backend-3 unreachable (...)`, for messages. */
export const describeStatuses = (members: readonly MemberStatus[]) =>
  members
    .map((m) =>
      m.reachable
        ? `${m.name} ${m.status.role ?? '?'}/${m.status.state ?? '?'}`
        : `${m.name} unreachable (${m.error})`,
    )
    .join(', ') || 'no members';

const isClusterLeader = (role: string) => ['leader', 'master', 'primary'].includes(role);

export interface HealthGateOptions {
  readonly maxLagBytes: number;
  /** The leader and timeline the run started with: a change is LeaderChangedError. */
  readonly before?: LeaderSnapshot;
  readonly now?: () => number;
}

export interface HealthReport extends LeaderSnapshot {
  /** Each backend's own GET /patroni, and each replica's progress. */
  readonly view: ReplicationView;
  /** Patroni's /cluster, or why no backend answered it. */
  readonly cluster: PatroniCluster | Error;
  /** What is wrong, one entry a member; empty when healthy. */
  readonly problems: readonly string[];
}

/**
 * Everything {@link healthGate} judges, for callers that check more (the
 * upgrade preflight). Throws only when there is no single leader with a
 * timeline (ClusterUnhealthyError) or it is not `before`'s (LeaderChangedError).
 */
export async function inspectHealth(
  get: PatroniGet,
  inventory: { readonly backend: readonly BackendAddress[] },
  options: HealthGateOptions,
): Promise<HealthReport> {
  const [view, cluster] = await Promise.all([
    readReplication(get, inventory.backend, (options.now ?? Date.now)()),
    readPatroniCluster(
      get,
      inventory.backend.map((n) => n.address),
    ).catch((error: Error): Error => error),
  ]);
  if (view.leaders.length !== 1) {
    throw new ClusterUnhealthyError(
      `${view.leaders.length} leaders (${describeStatuses(view.members)})`,
    );
  }
  const leader = view.leaders[0];
  const leaderStatus = view.members.find((m) => m.name === leader && m.reachable);
  const timeline = leaderStatus?.reachable ? leaderStatus.status.timeline : undefined;
  if (typeof timeline !== 'number') {
    throw new ClusterUnhealthyError(`the leader ${leader} reports no timeline`);
  }
  const { before } = options;
  if (before && (before.leader !== leader || before.timeline !== timeline)) {
    throw new LeaderChangedError(before, { leader, timeline });
  }

  const problems: string[] = [];
  const members = cluster instanceof Error ? undefined : cluster.members;
  if (cluster instanceof Error) problems.push(oneLine(cluster.message));
  const clusterLeader = members?.find((m) => isClusterLeader(m.role))?.name;
  if (members && clusterLeader !== leader) {
    problems.push(
      `Patroni's /cluster names ${clusterLeader ?? 'no one'} the leader, but ${leader} answers as the primary`,
    );
  }
  for (const member of view.members) {
    if (!member.reachable) {
      problems.push(`${member.name} is unreachable: GET /patroni failed (${member.error})`);
    } else if (members && !members.some((m) => m.name === member.name)) {
      problems.push(`${member.name} is not a running member (missing from Patroni's /cluster)`);
    } else if (member.name === leader) {
      if (!isRunningState(member.status.state)) {
        problems.push(`${member.name} is not a running member (state ${member.status.state})`);
      }
    } else {
      const progress = view.replicas.find((p) => p.name === member.name)!;
      const verdict = judgeReplica(progress, options.maxLagBytes);
      if (!verdict.caughtUp) problems.push(verdict.detail);
    }
  }
  return { leader, timeline, view, cluster, problems };
}

/**
 * Between two nodes of a rolling runbook: exactly one leader, agreeing with
 * /cluster; every backend answering its own REST API, running, and caught
 * up by the replay rule on the leader's timeline. Every problem found is in
 * the ClusterUnhealthyError's message.
 */
export async function healthGate(
  get: PatroniGet,
  inventory: { readonly backend: readonly BackendAddress[] },
  options: HealthGateOptions,
): Promise<LeaderSnapshot> {
  const { leader, timeline, problems } = await inspectHealth(get, inventory, options);
  if (problems.length) throw new ClusterUnhealthyError(problems.join('; '));
  return { leader, timeline };
}
