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

/** One look in a Wait/Choice loop: the deadline set on the first look travels with the state. */
export interface Poll {
  readonly ready: boolean;
  readonly deadline: number;
  readonly detail: string;
}

/** How long each wait may last before the run halts. */
export const BOUNDS_SECONDS = { target: 300, member: 600, leader: 300 } as const;

function look(
  clients: UpgradeClients,
  deadline: number | undefined,
  boundSeconds: number,
  ready: boolean,
  detail: string,
  timedOut: (message: string) => Error,
): Poll {
  const now = (clients.now ?? Date.now)();
  const until = deadline || now + boundSeconds * 1000;
  if (!ready && now > until) throw timedOut(`${detail} (gave up after ${boundSeconds} s)`);
  return { ready, deadline: until, detail };
}

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
    clients,
    deadline,
    BOUNDS_SECONDS.target,
    ready,
    `read endpoint target ${node.name} is ${state}, waiting for ${want}`,
    (message) => new TargetHealthTimedOutError(message),
  );
}

/** Waits until `node` runs as a replica on the leader's timeline, within the lag bound. */
export async function awaitMember(
  clients: UpgradeClients,
  inventory: UpgradeInventory,
  node: UpgradeNode,
  maxLagBytes: number,
  deadline?: number,
): Promise<Poll> {
  let ready = false;
  let detail: string;
  try {
    const cluster = await readCluster(clients, inventory);
    const leader = cluster.members.find(isLeader);
    const member = cluster.members.find((m) => m.name === node.name);
    ready =
      member !== undefined &&
      leader !== undefined &&
      member !== leader &&
      isRunning(member) &&
      member.timeline === leader.timeline &&
      lagBytes(member) <= maxLagBytes;
    detail = `${node.name}: ${describeMembers(cluster)} (maxLagBytes ${maxLagBytes})`;
  } catch (error) {
    detail = `${node.name}: ${(error as Error).message}`;
  }
  return look(
    clients,
    deadline,
    BOUNDS_SECONDS.member,
    ready,
    detail,
    (message) => new VerificationTimedOutError(message),
  );
}

/**
 * Asks the leader to hand over to the best upgraded replica: the synchronous
 * standby in synchronous mode, otherwise the least lagging one. A 503
 * "status unknown" is not an answer: the leader loop decides.
 */
export async function switchover(
  clients: UpgradeClients,
  inventory: UpgradeInventory,
  leaderName: string,
): Promise<{ readonly leader: string; readonly candidate: string; readonly answer: string }> {
  const cluster = await readCluster(clients, inventory);
  const leader = cluster.members.find(isLeader);
  if (leader?.name !== leaderName) {
    throw new SwitchoverFailedError(
      `the leader is ${leader?.name ?? 'nobody'}, not ${leaderName} as planned (${describeMembers(cluster)})`,
    );
  }
  const replicas = cluster.members.filter((m) => m !== leader && isRunning(m));
  const candidate =
    replicas.find((m) => m.role === 'sync_standby') ??
    [...replicas].sort((a, b) => lagBytes(a) - lagBytes(b))[0];
  if (!candidate) throw new SwitchoverFailedError(`no running replica to switch over to`);
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
    clients,
    deadline,
    BOUNDS_SECONDS.leader,
    primary.healthy && primary.leader === candidate,
    `waiting for ${candidate} to lead behind the write endpoint: ${primary.detail}`,
    (message) => new SwitchoverTimedOutError(message),
  );
}

/**
 * After a failure: cancel what Patroni has scheduled, resume a pause, and
 * report whether exactly one healthy primary serves writes.
 */
export async function halt(
  clients: UpgradeClients,
  inventory: UpgradeInventory,
): Promise<{ readonly healthyPrimary: boolean; readonly summary: string }> {
  const actions: string[] = [];
  const cluster = await readCluster(clients, inventory);
  const leader = cluster.members.find(isLeader);
  const leaderAddress = inventory.backend.find((n) => n.name === leader?.name)?.address;
  const anyAddress = leaderAddress ?? inventory.backend[0].address;
  if (cluster.scheduled_switchover) {
    await clients.patroniSend(anyAddress, 'DELETE', '/switchover');
    actions.push('cancelled the scheduled switchover');
  }
  for (const member of cluster.members.filter((m) => m.scheduled_restart)) {
    const address = inventory.backend.find((n) => n.name === member.name)?.address;
    if (address) await clients.patroniSend(address, 'DELETE', '/restart');
    actions.push(`cancelled the restart scheduled on ${member.name}`);
  }
  if (cluster.pause) {
    await clients.patroniSend(anyAddress, 'PATCH', '/config', { pause: false });
    actions.push('resumed Patroni');
  }
  const primary = await primaryState(clients, inventory);
  const summary = [
    ...actions,
    primary.healthy
      ? `one healthy primary, ${primary.leader}`
      : `NO single healthy primary: ${primary.detail}`,
  ].join('; ');
  return { healthyPrimary: primary.healthy, summary };
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
