import type { Metrics } from '@aws-lambda-powertools/metrics';
import { MetricResolution, MetricUnit } from '@aws-lambda-powertools/metrics';
import { CLUSTER_METRICS as M } from '../lib/metric-names';
import type { PatroniGet } from '../lib/patroni';
import {
  answersAsPrimary,
  BackendAddress,
  isRunningState,
  readReplication,
} from '../lib/replication';

type Unit = (typeof MetricUnit)[keyof typeof MetricUnit];

/** One member's own figures; absent where the member did not answer or has none. */
export interface MemberReading {
  readonly name: string;
  readonly reachable: boolean;
  /** Bytes the member replays behind the leader: 0 on the leader, absent without one leader. */
  readonly lagBytes?: number;
  /** Seconds replay has stood behind what was received (0 when caught up). */
  readonly replayDelaySeconds?: number;
  /** Seconds since the member last read the DCS. */
  readonly dcsLastSeenSeconds?: number;
}

/** The cluster as Patroni's REST API shows it at one moment. */
export interface ClusterReading {
  /** Members that answer as the primary: 1 when healthy. */
  readonly primaryCount: number;
  /** Members whose PostgreSQL runs (running or streaming). */
  readonly membersRunning: number;
  /** The single leader's timeline; absent without exactly one leader. */
  readonly timeline?: number;
  readonly pendingRestartMembers: number;
  readonly paused: boolean;
  readonly members: readonly MemberReading[];
}

/**
 * Reads every backend's own GET /patroni (in parallel, each bounded by the
 * transport's timeout) and measures the replicas against the single leader.
 * A member that does not answer counts as not running; nothing throws.
 */
export async function readCluster(
  get: PatroniGet,
  backends: readonly BackendAddress[],
  now: number = Date.now(),
): Promise<ClusterReading> {
  const view = await readReplication(get, backends, now);
  const leader = view.leaders.length === 1 ? view.leaders[0] : undefined;
  const members = view.members.map((member): MemberReading => {
    if (!member.reachable) return { name: member.name, reachable: false };
    const { status } = member;
    const progress = view.replicas.find((replica) => replica.name === member.name);
    const lagBytes = member.name === leader ? 0 : (progress?.replayLagBytes ?? undefined);
    const replayDelaySeconds =
      member.name === leader ? 0 : (progress?.replayDelaySeconds ?? undefined);
    const dcsLastSeenSeconds =
      typeof status.dcs_last_seen === 'number'
        ? Math.max(0, Math.round(now / 1000 - status.dcs_last_seen))
        : undefined;
    return { name: member.name, reachable: true, lagBytes, replayDelaySeconds, dcsLastSeenSeconds };
  });
  const answering = view.members.flatMap((m) => (m.reachable ? [m.status] : []));
  const leaderStatus = answering.filter(answersAsPrimary);
  return {
    primaryCount: view.leaders.length,
    membersRunning: answering.filter((status) => isRunningState(status.state)).length,
    timeline: leaderStatus.length === 1 ? leaderStatus[0].timeline : undefined,
    pendingRestartMembers: answering.filter((status) => status.pending_restart === true).length,
    paused: answering.some((status) => status.pause === true),
    members,
  };
}

/**
 * Publishes a reading as standard-resolution (60 s) EMF metrics: the
 * cluster's figures under ClusterName, each member's under ClusterName and
 * Member. A member with no figure publishes nothing for it (missing data).
 */
export function publishCluster(
  metrics: Metrics,
  clusterName: string,
  reading: ClusterReading,
): void {
  const standard = MetricResolution.Standard;
  metrics.addDimension('ClusterName', clusterName);
  metrics.addMetric(M.publisherRuns, MetricUnit.Count, 1, standard);
  metrics.addMetric(M.primaryCount, MetricUnit.Count, reading.primaryCount, standard);
  metrics.addMetric(M.membersRunning, MetricUnit.Count, reading.membersRunning, standard);
  metrics.addMetric(
    M.pendingRestartMembers,
    MetricUnit.Count,
    reading.pendingRestartMembers,
    standard,
  );
  metrics.addMetric(M.paused, MetricUnit.Count, reading.paused ? 1 : 0, standard);
  if (reading.timeline !== undefined) {
    metrics.addMetric(M.timeline, MetricUnit.Count, reading.timeline, standard);
  }
  metrics.publishStoredMetrics();
  for (const member of reading.members) {
    const figures: [string, Unit, number | undefined][] = [
      [M.replicaLagBytes, MetricUnit.Bytes, member.lagBytes],
      [M.replayDelaySeconds, MetricUnit.Seconds, member.replayDelaySeconds],
      [M.dcsLastSeenSeconds, MetricUnit.Seconds, member.dcsLastSeenSeconds],
    ];
    const known = figures.filter(([, , value]) => value !== undefined);
    if (known.length === 0) continue;
    // A single-metric instance writes its figure at once and then forgets its
    // dimensions: one per figure, each under the member's dimensions.
    for (const [name, unit, value] of known) {
      metrics
        .singleMetric()
        .addDimensions({ ClusterName: clusterName, Member: member.name })
        .addMetric(name, unit, value as number, standard);
    }
  }
}
