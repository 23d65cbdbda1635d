import { judgeReplica, readReplication, ReplicationView } from '../lib/replication';
import {
  describeMembers,
  isLeader,
  isRunning,
  lagBytes,
  primaryState,
  readCluster,
  targetHealth,
  UpgradeClients,
  UpgradeInventory,
  UpgradeNode,
} from './cluster';
import {
  NoHealthyPrimaryError,
  SwitchoverFailedError,
  SwitchoverTimedOutError,
  TargetHealthTimedOutError,
  VerificationTimedOutError,
} from './errors';
import { BOUNDS_SECONDS, look, Poll } from './poll';

/** Waits for the read endpoint to stop (drained) or start (healthy) sending reads to `node`. */
export async function awaitReadTarget(
  clients: UpgradeClients,
  node: UpgradeNode,
  want: 'drained' | 'healthy',
  deadline?: number,
): Promise<Poll> {
  const state = (await targetHealth(clients, 'read')).get(node.instanceId) ?? 'unregistered';
  const ready = want === 'healthy' ? state === 'healthy' : state !== 'healthy';
  return look(
    nowOf(clients),
    deadline,
    BOUNDS_SECONDS.target,
    ready,
    `read endpoint target ${node.name} is ${state}, waiting for ${want}`,
    (message) => new TargetHealthTimedOutError(message),
  );
}

const nowOf = (clients: UpgradeClients) => (clients.now ?? Date.now)();

/** Why the member's own /patroni does not make it a caught-up replica, or its figures when it does. */
function replayVerdict(view: ReplicationView, name: string, maxLagBytes: number) {
  const member = view.members.find((m) => m.name === name);
  if (member && !member.reachable) {
    return { caughtUp: false, detail: `${name} does not answer GET /patroni (${member.error})` };
  }
  const progress = view.replicas.find((p) => p.name === name);
  if (!progress) {
    const leaders = view.leaders.join(', ') || 'no member';
    return {
      caughtUp: false,
      detail: `${name} is not a replica of a single primary (GET /patroni: ${leaders} answers as the primary)`,
    };
  }
  return judgeReplica(progress, maxLagBytes);
}

/**
 * Waits until `node` runs as a replica on the leader's timeline, within the
 * lag bound both in /cluster and by the replay rule (its own /patroni).
 */
export async function awaitMember(
  clients: UpgradeClients,
  inventory: UpgradeInventory,
  node: UpgradeNode,
  maxLagBytes: number,
  deadline?: number,
): Promise<Poll> {
  // One clock reading per look: the replay delay and the deadline agree.
  const now = nowOf(clients);
  let ready = false;
  let detail: string;
  try {
    const cluster = await readCluster(clients, inventory);
    const leader = cluster.members.find(isLeader);
    const member = cluster.members.find((m) => m.name === node.name);
    const listed =
      member !== undefined &&
      leader !== undefined &&
      member !== leader &&
      isRunning(member) &&
      member.timeline === leader.timeline &&
      lagBytes(member) <= maxLagBytes;
    const leaderNode = inventory.backend.find((n) => n.name === leader?.name);
    const replay = leaderNode
      ? replayVerdict(
          await readReplication(clients.patroniGet, [leaderNode, node], now),
          node.name,
          maxLagBytes,
        )
      : { caughtUp: false, detail: `no leader in /cluster` };
    ready = listed && replay.caughtUp;
    detail = `${node.name}: ${replay.detail}; ${describeMembers(cluster)} (maxLagBytes ${maxLagBytes})`;
  } catch (error) {
    detail = `${node.name}: ${(error as Error).message}`;
  }
  return look(
    now,
    deadline,
    BOUNDS_SECONDS.member,
    ready,
    detail,
    (message) => new VerificationTimedOutError(message),
  );
}

/**
 * Asks the leader to hand over to the best upgraded replica among those
 * caught up by the replay rule: the synchronous standby in synchronous mode,
 * otherwise the one least behind in replay. A 503 "status unknown" is not an
 * answer: the leader loop decides.
 */
export async function switchover(
  clients: UpgradeClients,
  inventory: UpgradeInventory,
  leaderName: string,
  maxLagBytes: number,
): Promise<{ readonly leader: string; readonly candidate: string; readonly answer: string }> {
  const cluster = await readCluster(clients, inventory);
  const leader = cluster.members.find(isLeader);
  if (leader?.name !== leaderName) {
    throw new SwitchoverFailedError(
      `the leader is ${leader?.name ?? 'nobody'}, not ${leaderName} as planned (${describeMembers(cluster)})`,
    );
  }
  const view = await readReplication(clients.patroniGet, inventory.backend, nowOf(clients));
  const refused: string[] = [];
  const replicas = cluster.members.filter((member) => {
    if (member === leader) return false;
    const verdict = isRunning(member)
      ? replayVerdict(view, member.name, maxLagBytes)
      : { caughtUp: false, detail: `${member.name} is ${member.state}` };
    if (!verdict.caughtUp) refused.push(verdict.detail);
    return verdict.caughtUp;
  });
  const replayLag = (name: string) =>
    view.replicas.find((p) => p.name === name)?.replayLagBytes ?? Number.POSITIVE_INFINITY;
  const candidate =
    replicas.find((m) => m.role === 'sync_standby') ??
    [...replicas].sort(
      (a, b) => replayLag(a.name) - replayLag(b.name) || a.name.localeCompare(b.name),
    )[0];
  if (!candidate) {
    throw new SwitchoverFailedError(
      `no replica can take over from ${leaderName}: ${refused.join('; ') || 'there are no replicas'}`,
    );
  }
  const address = inventory.backend.find((n) => n.name === leaderName)?.address;
  if (!address) throw new SwitchoverFailedError(`${leaderName} is not in the inventory`);
  const answer = await clients.patroniSend(address, 'POST', '/switchover', {
    leader: leaderName,
    candidate: candidate.name,
  });
  const text = answer.body.trim();
  if (answer.status === 200 && /instead of/i.test(text)) {
    throw new SwitchoverFailedError(
      `Patroni answered "${text}": another member than ${candidate.name} won`,
    );
  }
  if (answer.status !== 200 && !(answer.status === 503 && /unknown/i.test(text))) {
    throw new SwitchoverFailedError(`Patroni refused the switchover (${answer.status}): ${text}`);
  }
  return { leader: leaderName, candidate: candidate.name, answer: `${answer.status} ${text}` };
}

/** Waits until the candidate leads and is the write endpoint's only healthy target. */
export async function awaitLeader(
  clients: UpgradeClients,
  inventory: UpgradeInventory,
  candidate: string,
  oldLeader: string,
  deadline?: number,
): Promise<Poll> {
  const primary = await primaryState(clients, inventory);
  if (primary.leader && primary.leader !== candidate && primary.leader !== oldLeader) {
    throw new SwitchoverFailedError(
      `${primary.leader} leads instead of ${candidate} (${primary.detail})`,
    );
  }
  return look(
    nowOf(clients),
    deadline,
    BOUNDS_SECONDS.leader,
    primary.healthy && primary.leader === candidate,
    `waiting for ${candidate} to lead behind the write endpoint: ${primary.detail}`,
    (message) => new SwitchoverTimedOutError(message),
  );
}

/** The end of a run: one healthy primary, every backend a running member. */
export async function confirmUpgraded(
  clients: UpgradeClients,
  inventory: UpgradeInventory,
): Promise<{ readonly leader: string; readonly timeline: number }> {
  const cluster = await readCluster(clients, inventory);
  const primary = await primaryState(clients, inventory);
  if (!primary.healthy) throw new NoHealthyPrimaryError(`after the upgrade: ${primary.detail}`);
  const down = inventory.backend.filter(
    (n) => !cluster.members.some((m) => m.name === n.name && isRunning(m)),
  );
  if (down.length) {
    throw new VerificationTimedOutError(
      `after the upgrade ${down.map((n) => n.name).join(', ')} is not running (${describeMembers(cluster)})`,
    );
  }
  const leader = cluster.members.find(isLeader)!;
  return { leader: leader.name, timeline: leader.timeline ?? -1 };
}

export { halt, haltReport } from './halt';
