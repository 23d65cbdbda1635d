import { ErrorName, messageError } from '../lib/errors';
import type { ClusterInventory } from '../lib/inventory';
import { type PatroniGet, type PatroniSend, readPatroniCluster } from '../lib/patroni';
import type { FailoverPlan } from './plan';

/** Patroni refused or abandoned the failover. */
export class FailoverFailedError extends messageError(ErrorName.FailoverFailed) {}
/** The candidate does not lead yet (the workflow looks again for a while). */
export class FailoverPendingError extends messageError(ErrorName.FailoverPending) {}

export interface PatroniClients {
  readonly patroniGet: PatroniGet;
  readonly patroniSend: PatroniSend;
}

const members = (cluster: { members: readonly { name: string; role: string; state: string }[] }) =>
  cluster.members.map((m) => `${m.name} ${m.role}/${m.state}`).join(', ') || 'no members';

/**
 * Asks Patroni to fail over to the plan's candidate (POST /failover with a
 * candidate and no leader, so it works with or without a leader key): the
 * old leader's Patroni when it answers, else the candidate's. A running old
 * primary shuts down cleanly first and its last WAL reaches the candidate.
 */
export async function handOver(
  clients: PatroniClients,
  plan: FailoverPlan,
  inventory: ClusterInventory,
): Promise<{ readonly answer: string; readonly via: string }> {
  const old = inventory.backend.find((node) => node.name === plan.from);
  const targets = [old, plan.candidate].filter((node) => node !== undefined);
  const failures: string[] = [];
  for (const node of targets) {
    let answer;
    try {
      answer = await clients.patroniSend(node.address, 'POST', '/failover', {
        candidate: plan.candidate.name,
      });
    } catch (error) {
      failures.push(`${node.name}: ${(error as Error).message}`);
      continue;
    }
    const text = answer.body.trim();
    if (
      answer.status === 200 &&
      text.includes(`"${plan.candidate.name}"`) &&
      !/instead of/.test(text)
    ) {
      return { answer: text, via: node.name };
    }
    // Patroni stopped waiting (max(10 s, loop_wait) x 2) with the failover still under way.
    if (answer.status === 503 && /status unknown/i.test(text))
      return { answer: text, via: node.name };
    throw new FailoverFailedError(
      `Patroni on ${node.name} answered the failover to ${plan.candidate.name} with ${answer.status}: ${text || '(no text)'}`,
    );
  }
  throw new FailoverFailedError(
    `no Patroni REST API took the failover request (${failures.join('; ')}); nothing was changed`,
  );
}

/** The candidate leads and runs: what the runbook reports at its end. */
export async function checkNewPrimary(
  clients: PatroniClients,
  plan: FailoverPlan,
  inventory: ClusterInventory,
): Promise<{ readonly leader: string; readonly timeline?: number; readonly members: string }> {
  const cluster = await readPatroniCluster(
    clients.patroniGet,
    inventory.backend.map((node) => node.address),
  );
  const leader = cluster.members.find((m) => m.role === 'leader');
  if (leader?.name !== plan.candidate.name || !['running', 'streaming'].includes(leader.state)) {
    throw new FailoverPendingError(
      `${plan.candidate.name} is not the running leader yet: ${members(cluster)}`,
    );
  }
  return { leader: leader.name, timeline: leader.timeline, members: members(cluster) };
}
