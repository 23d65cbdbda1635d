/** The node tiers, in the order a deploy brings them up. */
export const TIERS = ['etcd', 'backend', 'web'] as const;
export type Tier = (typeof TIERS)[number];

/**
 * One node as the runbooks carry it, from the stack's inventory to every
 * task's payload: strings only, as SSM document parameters are.
 */
export interface InventoryNode {
  readonly name: string;
  readonly tier: Tier;
  readonly instanceId: string;
  readonly address: string;
  /** Backends only. */
  readonly dataVolumeId?: string;
  /** PEM agent number, '0' for none. */
  readonly agentId: string;
  /** Comma-separated TLS identities the node requests. */
  readonly identities: string;
}

/** What a function reads of a node to find it on the network. */
export type NodeAddress = Pick<InventoryNode, 'name' | 'tier' | 'address'>;

/**
 * The cluster's nodes by tier. Functions name the part of a node they read
 * (`ClusterInventory<NodeAddress>`); the state machines carry whole nodes.
 */
export interface ClusterInventory<N extends NodeAddress = InventoryNode> {
  readonly etcd: readonly N[];
  readonly backend: readonly N[];
  readonly web: readonly N[];
}
