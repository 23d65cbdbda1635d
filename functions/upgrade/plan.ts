import type { UpgradeInventory, UpgradeNode } from './cluster';
import { PreflightFailedError } from './errors';
import type { Preflight } from './preflight';
import type { Component } from './request';

/** What one node's `check` printed (its key=value lines). */
export interface NodeCheck {
  readonly name: string;
  readonly stdout: string;
}

/** The settings every node step receives. */
export interface UpgradeSettings {
  readonly component: Component;
  /** Exact: `latest` was resolved once, so every node gets the same version. */
  readonly version: string;
  readonly maxLagBytes: number;
}

export interface UpgradePlan {
  readonly settings: UpgradeSettings;
  readonly leader: string;
  readonly etcd: readonly UpgradeNode[];
  /** Least caught-up first. */
  readonly replicas: readonly UpgradeNode[];
  /** The leader, when it needs the upgrade: [] or one node. */
  readonly primary: readonly UpgradeNode[];
  /**
   * The pem component's backends: the leader first (PEM's schema step runs
   * there), then the replicas; no switchover, no restart of PostgreSQL.
   */
  readonly pemBackends: readonly UpgradeNode[];
  /** Web hosts, with any an earlier run left out of the ALB (pem). */
  readonly web: readonly UpgradeNode[];
  /** Nodes already at the target (a second run finishes only the rest). */
  readonly alreadyAtTarget: readonly string[];
  /** One write interruption (a switchover) or none. */
  readonly switchover: boolean;
}

/** The key=value lines of a document's output. */
export function parseKeyValues(stdout: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const match = /^([a-z_]+)=(.*)$/.exec(line.trim());
    if (match) values[match[1]] = match[2];
  }
  return values;
}

/** 1:15.20-0+deb12u1 -> 15.20, as the running programs report themselves. */
export const upstreamVersion = (version: string) =>
  version.replace(/^[0-9]+:/, '').replace(/-[^-]*$/, '');

function atTarget(component: Component, values: Record<string, string>, version: string) {
  if (values.running_stale === 'true' || values.drained === 'true') return false;
  if (component === 'os') return values.upgradable === '0';
  if (component === 'settings') return values.pending_restart === 'false';
  return values.installed === version && values.running === upstreamVersion(version);
}

/**
 * The plan from the preflight and every node's own check: one exact target
 * version, no transaction older than the bound, etcd healthy, and the nodes
 * still to do in order (etcd members, replicas least caught-up first, the
 * primary, web hosts; for pem the leader then the replicas, then web hosts).
 */
export function planUpgrade(
  inventory: UpgradeInventory,
  preflight: Preflight,
  checks: readonly NodeCheck[],
): UpgradePlan {
  const { request } = preflight;
  const values = new Map(checks.map((c) => [c.name, parseKeyValues(c.stdout)]));
  const missing = preflight.checkNodes.filter((n) => !values.has(n.name)).map((n) => n.name);
  if (missing.length)
    throw new PreflightFailedError(`preflight: no check from ${missing.join(', ')}`);

  const targets = new Set([...values.values()].map((v) => v.target));
  if (targets.size !== 1 || targets.has(undefined as never)) {
    const seen = [...values.entries()].map(([name, v]) => `${name} ${v.target ?? 'none'}`);
    throw new PreflightFailedError(
      `preflight: the nodes do not resolve ${request.version} to one version (${seen.join(', ')}); no node was touched`,
    );
  }
  const version = [...targets][0];
  const leaderValues = values.get(preflight.leader);
  const oldest = Number(leaderValues?.oldest_transaction_seconds ?? 0);
  if (oldest > request.maxTransactionSeconds) {
    throw new PreflightFailedError(
      `preflight: a transaction on the primary ${preflight.leader} has been open ${oldest} s (maxTransactionSeconds ${request.maxTransactionSeconds}); no node was touched`,
    );
  }

  const todo = (node: UpgradeNode) => {
    const nodeValues = values.get(node.name);
    return nodeValues !== undefined && !atTarget(request.component, nodeValues, version);
  };
  const checked = new Set(preflight.checkNodes.map((n) => n.name));
  const inPlan = (nodes: readonly UpgradeNode[]) => nodes.filter((n) => checked.has(n.name));
  const byName = new Map(inventory.backend.map((n) => [n.name, n]));
  let replicas = inPlan(preflight.replicaOrder.map((name) => byName.get(name)!)).filter(todo);
  let primary = inPlan([byName.get(preflight.leader)!]).filter(todo);
  let pemBackends: UpgradeNode[] = [];
  if (request.component === 'pem') {
    pemBackends = [...primary, ...replicas];
    primary = replicas = [];
  }
  const etcd = inPlan(inventory.etcd).filter(todo);
  const outOfService = new Set((preflight.webOutOfService ?? []).map((n) => n.name));
  const web = inPlan(inventory.web).filter(
    (n) => todo(n) || (request.component === 'pem' && outOfService.has(n.name)),
  );
  const planned = new Set(
    [...etcd, ...replicas, ...primary, ...pemBackends, ...web].map((n) => n.name),
  );
  return {
    settings: { component: request.component, version, maxLagBytes: request.maxLagBytes },
    leader: preflight.leader,
    etcd,
    replicas,
    primary,
    pemBackends,
    web,
    alreadyAtTarget: [...checked].filter((name) => !planned.has(name)),
    switchover: primary.length > 0,
  };
}
