import type { ClusterNode } from '../constructs/node-group';
import type { BackendNode } from '../constructs/backend-tier';
import type { ClusterInventory, InventoryNode, Tier } from '../../functions/lib/inventory';

/** TLS identities each tier requests (the signer checks them against its own entitlements). */
const IDENTITIES: Record<Tier, readonly string[]> = {
  etcd: ['etcd-server', 'etcd-peer'],
  backend: ['postgres-server', 'patroni-rest', 'pgbackrest', 'etcd-client'],
  web: ['pem-web'],
};

export interface InventorySource {
  readonly etcd: readonly ClusterNode[];
  readonly backend: readonly BackendNode[];
  readonly web: readonly ClusterNode[];
  readonly pemEnabled: boolean;
}

/** Web hosts' agent numbers start here: backends (at most 9) never reach them. */
export const WEB_AGENT_BASE = 100;

/**
 * A node's PEM agent number, from its name alone: backend-N is agent N and
 * web-N agent 100 + N (seed 001's agent1..agentN, with room), so adding a
 * node never moves another node's number, and with it its agent certificate.
 */
export function agentNumberOf(name: string, tier: Tier): number {
  const number = nodeNumberOf(name);
  if (tier === 'etcd' || number === undefined) return 0;
  return (tier === 'web' ? WEB_AGENT_BASE : 0) + number;
}

/** The number a node's name ends with (backend-4: 4), if any. */
export function nodeNumberOf(name: string): number | undefined {
  const match = /-(\d+)$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

/** The nodes as the bootstrap flow carries them: names, ids and addresses (tokens allowed). */
export function clusterInventory(source: InventorySource): ClusterInventory {
  const entry = (node: ClusterNode, tier: Tier, extra: Partial<InventoryNode> = {}) => {
    const agent = source.pemEnabled ? agentNumberOf(node.name, tier) : 0;
    const identities = agent > 0 ? [...IDENTITIES[tier], 'pem-agent'] : IDENTITIES[tier];
    return {
      name: node.name,
      tier,
      instanceId: node.instance.instanceId,
      address: node.privateIp,
      agentId: String(agent),
      identities: identities.join(','),
      ...extra,
    };
  };
  return {
    etcd: source.etcd.map((node) => entry(node, 'etcd')),
    backend: source.backend.map((node) =>
      entry(node, 'backend', { dataVolumeId: node.dataVolume.volumeId }),
    ),
    web: source.web.map((node) => entry(node, 'web')),
  };
}
