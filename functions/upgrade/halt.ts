import type { PatroniCluster } from '../lib/patroni';
import {
  clusterInstances,
  drainTagsOf,
  isLeader,
  primaryState,
  readCluster,
  UpgradeClients,
  UpgradeInventory,
  UpgradeNode,
} from './cluster';
import { webHostsOutOfService } from './web-targets';

/** A backend missing from /cluster: Patroni is not answering, so its tags cannot be seen. */
export interface UnknownBackend {
  readonly name: string;
  /** What EC2 says of its instance: running, stopped, ..., `not found` or `unknown`. */
  readonly ec2State: string;
}

export interface HaltResult {
  readonly healthyPrimary: boolean;
  /** The actions, then the primary's state: one line. */
  readonly summary: string;
  /** What the halt did, in order (cancelled a switchover, resumed Patroni, ...). */
  readonly actions: readonly string[];
  /** `one healthy primary, backend-1` or `NO single healthy primary: ...`. */
  readonly primary: string;
  /** Backends (as the inventory lists them) with noloadbalance or nosync set in /cluster. */
  readonly drained: readonly UpgradeNode[];
  readonly unknown: readonly UnknownBackend[];
}

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();
const messageOf = (error: unknown) => oneLine((error as Error).message ?? String(error));

async function tryReadCluster(clients: UpgradeClients, inventory: UpgradeInventory) {
  try {
    return { cluster: await readCluster(clients, inventory) };
  } catch (error) {
    return { error: messageOf(error) };
  }
}

/** Drained backends, and those whose tags cannot be seen with their EC2 state. */
async function drainView(
  clients: UpgradeClients,
  inventory: UpgradeInventory,
  cluster: PatroniCluster | undefined,
) {
  const memberOf = (node: UpgradeNode) => cluster?.members.find((m) => m.name === node.name);
  const drained = inventory.backend.filter((n) => drainTagsOf(memberOf(n)).length > 0);
  const missing = inventory.backend.filter((n) => !memberOf(n));
  // EC2 is asked only when it explains something; a failure leaves the state unknown.
  const instances = missing.length
    ? await clusterInstances(clients).catch(() => undefined)
    : undefined;
  const unknown = missing.map((n) => ({
    name: n.name,
    ec2State: instances ? (instances.get(n.instanceId)?.state ?? 'not found') : 'unknown',
  }));
  return { drained, unknown, memberOf };
}

/**
 * After a failure: cancel what Patroni has scheduled, resume a pause, and
 * report whether exactly one healthy primary serves writes, which backends
 * are drained and which cannot be seen. It reports rather than throws when
 * /cluster cannot be read: the halt must always end with a report.
 */
export async function halt(
  clients: UpgradeClients,
  inventory: UpgradeInventory,
): Promise<HaltResult> {
  const actions: string[] = [];
  const { cluster, error } = await tryReadCluster(clients, inventory);
  if (error) actions.push(`could not read Patroni's /cluster (${error})`);
  if (cluster) {
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
  }
  const state = await primaryState(clients, inventory).catch((e: unknown) => ({
    healthy: false,
    leader: undefined,
    detail: messageOf(e),
  }));
  const primary = state.healthy
    ? `one healthy primary, ${state.leader}`
    : `NO single healthy primary: ${state.detail}`;
  const { drained, unknown } = await drainView(clients, inventory, cluster);
  return {
    healthyPrimary: state.healthy,
    summary: [...actions, primary].join('; '),
    actions,
    primary,
    drained,
    unknown,
  };
}

/**
 * The halt's last word, after the runbook tried to clear drain tags: the
 * halt's actions and primary, then what is still drained or unseen, on one
 * `; `-separated line.
 */
export async function haltReport(
  clients: UpgradeClients,
  inventory: UpgradeInventory,
  earlier: Partial<HaltResult> | undefined,
): Promise<{ readonly summary: string }> {
  const { cluster, error } = await tryReadCluster(clients, inventory);
  const now = await drainView(clients, inventory, cluster);
  const parts = [...(earlier?.actions ?? []), earlier?.primary ?? earlier?.summary ?? ''];
  if (error) parts.push(`could not read Patroni's /cluster again (${error})`);
  for (const node of now.drained) {
    parts.push(
      `${node.name} still has ${drainTagsOf(now.memberOf(node)).join(', ')} set (out of the read endpoint): ` +
        `the next upgrade run clears them first, or run the upgrade document's undrain action on it`,
    );
  }
  for (const { name, ec2State } of now.unknown) {
    parts.push(
      `${name} (EC2 ${ec2State}) is not answering: if this run drained it, noloadbalance and nosync ` +
        `stay set in its patroni.yml; the next upgrade run clears them first`,
    );
  }
  const watched = [...(earlier?.drained ?? []), ...(earlier?.unknown ?? [])].map((n) => n.name);
  const cleared = inventory.backend.filter((node) => {
    const member = now.memberOf(node);
    return watched.includes(node.name) && member && drainTagsOf(member).length === 0;
  });
  if (cleared.length) parts.push(`drain tags cleared on ${cleared.map((n) => n.name).join(', ')}`);
  const webOut = await webHostsOutOfService(clients, inventory).catch(() => []);
  for (const node of webOut) {
    parts.push(
      `web host ${node.name} is out of the ALB's target group: the next pem upgrade run finishes it and registers it again`,
    );
  }
  return { summary: parts.filter(Boolean).map(oneLine).join('; ') };
}
