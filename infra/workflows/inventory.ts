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
  /** PEM agents get numbers: backends 1..n, then web hosts (seed 001's agent1..agentN). */
  readonly pemEnabled: boolean;
}

/** The nodes as the bootstrap flow carries them: names, ids and addresses (tokens allowed). */
export function clusterInventory(source: InventorySource): ClusterInventory {
  let nextAgent = 1;
  const entry = (node: ClusterNode, tier: Tier, extra: Partial<InventoryNode> = {}) => {
    const agent = source.pemEnabled && tier !== 'etcd' ? nextAgent++ : 0;
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
