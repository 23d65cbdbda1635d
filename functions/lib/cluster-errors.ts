/**
 * The errors a runbook's cluster checks end with. Step Functions matches them
 * by name in Retry and Catch, so every function that checks the cluster
 * throws these same classes.
 */

/** Leader and timeline: what must not change while a runbook rolls through the nodes. */
export interface LeaderSnapshot {
  readonly leader: string;
  readonly timeline: number;
}

/** The cluster is not in a state to start from or to go on with. */
export class ClusterUnhealthyError extends Error {
  constructor(detail: string) {
    super(`the cluster is not healthy: ${detail}`);
    this.name = 'ClusterUnhealthyError';
  }
}

/** Leader or timeline differ from the snapshot taken before: a failover happened. */
export class LeaderChangedError extends Error {
  constructor(before: LeaderSnapshot, after: LeaderSnapshot) {
    super(
      `the leader changed during the run: before ${before.leader} on timeline ${before.timeline}, ` +
        `now ${after.leader} on timeline ${after.timeline}`,
    );
    this.name = 'LeaderChangedError';
  }
}
