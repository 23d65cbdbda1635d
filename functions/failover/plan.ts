import { ErrorName, InvalidInputError, messageError } from '../lib/errors';
import type { ClusterInventory, InventoryNode, NodeAddress } from '../lib/inventory';
import type { PatroniCluster } from '../lib/patroni';

/** No member can take over without losing an acknowledged commit; nothing was touched. */
export class FailoverRefusedError extends messageError(ErrorName.FailoverRefused) {}

const EXAMPLE = '{"candidate": "backend-2", "dryRun": true}';
const given = (value: unknown) => JSON.stringify(value) ?? String(value);

/** The execution input: all fields optional. */
export interface FailoverRequest {
  /** The member to promote. @default the safe member with the most WAL */
  readonly candidate?: string;
  /** Remove the old primary's space reserve when its volume is full. @default true */
  readonly releaseReserve: boolean;
  /** Plan only: inspect and choose, touch nothing. @default false */
  readonly dryRun: boolean;
}

/** Checks the execution input against the cluster's backends. */
export function parseFailoverRequest(
  input: unknown,
  inventory: ClusterInventory<NodeAddress>,
): FailoverRequest {
  const fields = input ?? {};
  if (typeof fields !== 'object' || Array.isArray(fields)) {
    throw new InvalidInputError(
      `the input must be an object such as ${EXAMPLE}; got ${given(input)}`,
    );
  }
  const record = fields as Record<string, unknown>;
  const unknown = Object.keys(record).filter(
    (key) => !['candidate', 'releaseReserve', 'dryRun'].includes(key),
  );
  if (unknown.length) {
    throw new InvalidInputError(
      `unknown field ${unknown.map((key) => `"${key}"`).join(', ')}; the fields are candidate, releaseReserve and dryRun, as in ${EXAMPLE}`,
    );
  }
  const names = inventory.backend.map((node) => node.name);
  if (record.candidate !== undefined && !names.includes(record.candidate as string)) {
    throw new InvalidInputError(
      `candidate must be one of ${names.join(', ')}; got ${given(record.candidate)}`,
    );
  }
  for (const flag of ['releaseReserve', 'dryRun'] as const) {
    if (record[flag] !== undefined && typeof record[flag] !== 'boolean') {
      throw new InvalidInputError(`${flag} must be true or false; got ${given(record[flag])}`);
    }
  }
  return {
    ...(record.candidate !== undefined && { candidate: record.candidate as string }),
    releaseReserve: (record.releaseReserve as boolean | undefined) ?? true,
    dryRun: (record.dryRun as boolean | undefined) ?? false,
  };
}

/** What the failover document's inspect action reported on one backend. */
export interface Inspection {
  readonly node: string;
  readonly mounted: boolean;
  readonly volumeSizeMib?: number;
  /** Free to PostgreSQL (the blocks ext4 keeps for root not counted). */
  readonly volumeFreeMib?: number;
  readonly reserveMib?: number;
  /** Less free than this counts as full (the space reserve's size). */
  readonly fullBelowMib?: number;
  readonly postgres: 'primary' | 'replica' | 'down';
  /** Flushed on a primary, received (or replayed) on a replica. */
  readonly lsn?: string;
}

/** The `failover-inspect=KEY=VALUE` lines of one backend's inspect output. */
export function parseInspection(node: string, stdout: string): Inspection {
  const found = new Map<string, string>();
  for (const [, key, value] of stdout.matchAll(/^failover-inspect=([a-z-]+)=(.*)$/gm)) {
    found.set(key, value.trim());
  }
  const postgres = found.get('postgres');
  if (postgres !== 'primary' && postgres !== 'replica' && postgres !== 'down') {
    throw new Error(
      `${node}: the failover inspection reported postgres=${postgres ?? '(nothing)'}; expected primary, replica or down`,
    );
  }
  const mib = (key: string) => {
    const value = found.get(key);
    return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
  };
  const lsn = found.get('lsn');
  return {
    node,
    mounted: found.get('mounted') === '1',
    volumeSizeMib: mib('volume-size-mib'),
    volumeFreeMib: mib('volume-free-mib'),
    reserveMib: mib('reserve-mib'),
    fullBelowMib: mib('full-below-mib'),
    postgres,
    ...(lsn && /^[0-9A-F]+\/[0-9A-F]+$/i.test(lsn) && { lsn: lsn.toUpperCase() }),
  };
}

/** A WAL position as one number, for comparing. */
export const lsnValue = (lsn: string): bigint => {
  const [high, low] = lsn.split('/');
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
};

/**
 * A volume with less free than the reserve's size is full. Once the reserve
 * is gone (released by hand or by a run that stopped later), the space it
 * gave back does not count as free: a second run still sees the volume full.
 */
export function volumeFull(inspection: Inspection): boolean {
  if (!inspection.mounted) return true;
  const reserve = inspection.fullBelowMib ?? Number.POSITIVE_INFINITY;
  const released = (inspection.reserveMib ?? 0) === 0 ? reserve : 0;
  return (inspection.volumeFreeMib ?? 0) - released < reserve;
}

/** What the runbook carries from the plan on. */
export interface FailoverPlan {
  /** Patroni's leader when the run began; null when the cluster had none. */
  readonly from: string | null;
  readonly candidate: InventoryNode;
  /** The old primary, when its volume is full and the request lets the reserve go. */
  readonly releaseReserveOn: readonly InventoryNode[];
  /**
   * The newest WAL position any replica reported, which the candidate has;
   * null when the old primary still runs and hands over cleanly, or the
   * candidate is the synchronous standby.
   */
  readonly knownLsn: string | null;
  readonly why: string;
  readonly dryRun: boolean;
}

/**
 * Chooses who takes over from a primary that cannot write: refuses a primary
 * that runs with room (a switchover moves that one), and any candidate that
 * may lack an acknowledged write. In synchronous mode only the recorded
 * synchronous standby is sure to have every commit the primary acknowledged.
 * An old primary that still runs hands over cleanly (PostgreSQL's shutdown
 * sends every WAL record to the replicas streaming from it), so any streaming
 * replica will have it all; one that is down can send nothing more, so
 * without a synchronous standby the candidate must have the newest WAL any
 * replica received.
 */
export function planFailover(
  request: FailoverRequest,
  inventory: ClusterInventory,
  cluster: PatroniCluster,
  inspections: readonly Inspection[],
): FailoverPlan {
  const leader = cluster.members.find((m) => ['leader', 'master', 'primary'].includes(m.role));
  const inspectionOf = (name: string) => inspections.find((i) => i.node === name);
  const old = leader && inspectionOf(leader.name);
  if (old && old.postgres === 'primary' && !volumeFull(old)) {
    throw new FailoverRefusedError(
      `${old.node} is a running primary with ${old.volumeFreeMib} MiB free (full is less than ${old.fullBelowMib} MiB): there is nothing to fail over; to move the primary on purpose, switch over (patronictl switchover, or the upgrade runbook); nothing was touched`,
    );
  }
  const positions = inspections.flatMap((i) => (i.lsn && i.postgres === 'replica' ? [i.lsn] : []));
  if (!positions.length) {
    throw new FailoverRefusedError(
      `no replica answers with a WAL position (${describe(inspections)}); nothing was touched`,
    );
  }
  const sync = cluster.members.filter((m) => m.role === 'sync_standby').map((m) => m.name);
  // The synchronous standby has every acknowledged commit whatever an
  // asynchronous replica received beyond it (those commits were never acknowledged).
  const knownLsn =
    old?.postgres === 'primary' || sync.length
      ? null
      : positions.reduce((a, b) => (lsnValue(b) > lsnValue(a) ? b : a));
  const newest = knownLsn ? ` The newest WAL any replica received is ${knownLsn}.` : '';
  const judged = inventory.backend
    .filter((node) => node.name !== leader?.name)
    .map((node) => ({ node, ...judge(node.name, cluster, inspectionOf(node.name), knownLsn) }));
  const safe = judged.filter(
    (j) => j.unsafe === undefined && (!sync.length || sync.includes(j.node.name)),
  );
  const reasons = () =>
    judged
      .map(
        (j) =>
          `${j.node.name}: ${j.unsafe ?? (sync.length && !sync.includes(j.node.name) ? 'not the synchronous standby' : 'ready')}`,
      )
      .join('; ');
  const syncRule = sync.length
    ? ` In synchronous mode only the recorded synchronous standby (${sync.join(', ')}) has every acknowledged commit.`
    : '';
  if (request.candidate && request.candidate === leader?.name) {
    throw new FailoverRefusedError(
      `${request.candidate} is the primary this runbook would move off; name a replica, or none; nothing was touched`,
    );
  }
  if (request.candidate) {
    const chosen = safe.find((j) => j.node.name === request.candidate);
    if (!chosen) {
      throw new FailoverRefusedError(
        `${request.candidate} cannot take over safely: ${reasons()}.${syncRule}${newest} Nothing was touched`,
      );
    }
  }
  const [best] = safe
    .filter((j) => !request.candidate || j.node.name === request.candidate)
    .sort(
      (a, b) =>
        Number(lsnValue(b.lsn!) - lsnValue(a.lsn!)) || a.node.name.localeCompare(b.node.name),
    );
  if (!best) {
    throw new FailoverRefusedError(
      `no member can take over without losing acknowledged writes: ${reasons()}.${syncRule}${newest} Nothing was touched`,
    );
  }
  const oldNode = inventory.backend.find((node) => node.name === leader?.name);
  const release =
    request.releaseReserve &&
    oldNode &&
    old &&
    volumeFull(old) &&
    old.mounted &&
    (old.reserveMib ?? 0) > 0;
  return {
    from: leader?.name ?? null,
    candidate: best.node,
    releaseReserveOn: release ? [oldNode] : [],
    knownLsn,
    why: leader
      ? `${leader.name} ${old ? stateOf(old) : 'was not inspected'}`
      : 'the cluster has no leader',
    dryRun: request.dryRun,
  };
}

function judge(
  name: string,
  cluster: PatroniCluster,
  inspection: Inspection | undefined,
  knownLsn: string | null,
): { unsafe?: string; lsn?: string } {
  const member = cluster.members.find((m) => m.name === name);
  if (!member) return { unsafe: 'not a Patroni member' };
  if (!['running', 'streaming'].includes(member.state)) {
    return { unsafe: `Patroni reports it ${member.state || 'in no state'}` };
  }
  if (member.tags?.nofailover === true) return { unsafe: 'tagged nofailover' };
  if (!inspection || inspection.postgres !== 'replica' || !inspection.lsn) {
    return {
      unsafe: `PostgreSQL is ${inspection?.postgres ?? 'not inspected'}, not a replica that answers`,
    };
  }
  if (knownLsn && lsnValue(inspection.lsn) < lsnValue(knownLsn)) {
    return { unsafe: `has WAL to ${inspection.lsn} only, behind ${knownLsn}`, lsn: inspection.lsn };
  }
  return { lsn: inspection.lsn };
}

const stateOf = (i: Inspection) =>
  !i.mounted
    ? 'has no data volume mounted'
    : `${i.postgres === 'down' ? 'has PostgreSQL down' : `runs PostgreSQL as ${i.postgres}`}, ${i.volumeFreeMib} MiB free of ${i.volumeSizeMib} MiB${volumeFull(i) ? ' (full)' : ''}`;

const describe = (inspections: readonly Inspection[]) =>
  inspections.map((i) => `${i.node} ${stateOf(i)}`).join('; ') || 'none inspected';
