/**
 * The errors a runbook's cluster checks end with. Step Functions matches them
 * by name in Retry and Catch, so every function that checks the cluster
 * throws these same classes.
 */
import { ErrorName, PemHaError } from './errors';

/** Leader and timeline: what must not change while a runbook rolls through the nodes. */
export interface LeaderSnapshot {
  readonly leader: string;
  readonly timeline: number;
}

/** The cluster is not in a state to start from or to go on with. */
export class ClusterUnhealthyError extends PemHaError {
  constructor(detail: string) {
    super(ErrorName.ClusterUnhealthy, `the cluster is not healthy: ${detail}`);
  }
}

/** Leader or timeline differ from the snapshot taken before: a failover happened. */
export class LeaderChangedError extends PemHaError {
  constructor(before: LeaderSnapshot, after: LeaderSnapshot) {
    super(
      ErrorName.LeaderChanged,
      `the leader changed during the run: before ${before.leader} on timeline ${before.timeline}, ` +
        `now ${after.leader} on timeline ${after.timeline}`,
    );
  }
}
