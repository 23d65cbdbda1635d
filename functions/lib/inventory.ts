/** A node as the runbooks carry it (the inventory's strings). */
export interface RunbookNode {
  readonly name: string;
  readonly tier: 'etcd' | 'backend' | 'web';
  readonly address: string;
  readonly [field: string]: unknown;
}

export interface RunbookInventory<N extends RunbookNode = RunbookNode> {
  readonly etcd: readonly N[];
  readonly backend: readonly N[];
  readonly web: readonly N[];
}
