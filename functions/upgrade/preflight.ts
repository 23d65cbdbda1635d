import { inspectHealth } from '../lib/replication';
import {
  clusterInstances,
  drainTagsOf,
  primaryState,
  UpgradeClients,
  UpgradeInventory,
  UpgradeNode,
} from './cluster';
import { PreflightFailedError } from './errors';
import type { UpgradeRequest } from './request';
import { webHostsOutOfService } from './web-targets';

export interface Preflight {
  readonly request: UpgradeRequest;
  readonly leader: string;
  readonly timeline: number;
  /** Replicas, least caught-up first: the order they are upgraded in. */
  readonly replicaOrder: readonly string[];
  /** The nodes the component lives on: each checks itself (versions, etcd, transactions). */
  readonly checkNodes: readonly UpgradeNode[];
  /** Backends an earlier, halted run left with noloadbalance or nosync set: cleared first. */
  readonly drained: readonly UpgradeNode[];
  /** Web hosts out of the ALB's target group (a halted pem run): a pem run finishes them. */
  readonly webOutOfService?: readonly UpgradeNode[];
}

/** Nodes a component's packages live on. */
export function nodesOf(component: UpgradeRequest['component'], inventory: UpgradeInventory) {
  switch (component) {
    case 'etcd':
      return [...inventory.etcd];
    case 'os':
      return [...inventory.etcd, ...inventory.backend, ...inventory.web];
    case 'pem':
      return [...inventory.backend, ...inventory.web];
    default:
      return [...inventory.backend];
  }
}

/**
 * Everything that must hold before any node is touched: EC2 and Patroni
 * agree on the members; the health gate's rules (one leader; every replica
 * running, on the leader's timeline, receiving and replaying within
 * maxLagBytes, from each member's own /patroni); no pause and nothing
 * scheduled; the write endpoint's only healthy target is the leader. Drain
 * tags left by a halted run do not refuse: the result lists those nodes.
 */
export async function preflight(
  clients: UpgradeClients,
  inventory: UpgradeInventory,
  request: UpgradeRequest,
): Promise<Preflight> {
  const fail = (check: string): never => {
    throw new PreflightFailedError(`preflight: ${check}; no node was touched`);
  };
  const instances = await clusterInstances(clients);
  const nodes = [...inventory.etcd, ...inventory.backend, ...inventory.web];
  for (const node of nodes) {
    const instance = instances.get(node.instanceId);
    if (!instance)
      fail(`EC2 has no instance ${node.instanceId} (${node.name}) tagged for this cluster`);
    else if (instance.state !== 'running')
      fail(`${node.name} (${node.instanceId}) is ${instance.state}`);
  }
  const strangers = [...instances.keys()].filter((id) => !nodes.some((n) => n.instanceId === id));
  if (strangers.length)
    fail(`EC2 lists instances the stack does not know: ${strangers.join(', ')}`);

  // The health gate's rules (one leader, each backend running and caught up
  // by the replay rule), then what only a start needs.
  const health = await inspectHealth(clients.patroniGet, inventory, {
    maxLagBytes: request.maxLagBytes,
    now: clients.now,
  }).catch((error: Error) => fail(error.message));
  if (health.problems.length) fail(health.problems.join('; '));
  if (health.cluster instanceof Error) return fail(health.cluster.message);
  const cluster = health.cluster;
  const memberNames = cluster.members.map((m) => m.name).sort();
  const backendNames = inventory.backend.map((n) => n.name).sort();
  if (JSON.stringify(memberNames) !== JSON.stringify(backendNames)) {
    fail(
      `Patroni's members (${memberNames.join(', ')}) are not the stack's backends (${backendNames.join(', ')})`,
    );
  }
  if (cluster.pause) fail('the cluster is paused (patronictl resume first)');
  if (cluster.scheduled_switchover) fail('a switchover is scheduled');
  const restarting = cluster.members.filter((m) => m.scheduled_restart).map((m) => m.name);
  if (restarting.length) fail(`a restart is scheduled on ${restarting.join(', ')}`);
  const primary = await primaryState(clients, inventory);
  if (!primary.healthy)
    fail(`the write endpoint does not route to the leader alone (${primary.detail})`);

  // Least caught-up first, measured by replay (what a reader of the replica sees).
  const replicaOrder = [...health.view.replicas]
    .sort(
      (a, b) => (b.replayLagBytes ?? 0) - (a.replayLagBytes ?? 0) || a.name.localeCompare(b.name),
    )
    .map((p) => p.name);
  const drained = inventory.backend.filter(
    (n) => drainTagsOf(cluster.members.find((m) => m.name === n.name)).length > 0,
  );
  return {
    request,
    leader: health.leader,
    timeline: health.timeline,
    replicaOrder,
    checkNodes: nodesOf(request.component, inventory),
    drained,
    webOutOfService: await webHostsOutOfService(clients, inventory),
  };
}
