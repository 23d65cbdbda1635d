import { InvalidInputError } from './errors';

/**
 * What a run moves: packages (postgresql, patroni, etcd, os, and pem: EDB's
 * edb-pem on the backends and web hosts), or settings: no package, a restart
 * of each member whose PostgreSQL waits for one (Patroni's pending_restart)
 * after a deploy changed its parameters.
 */
export const COMPONENTS = ['postgresql', 'patroni', 'etcd', 'os', 'settings', 'pem'] as const;
/** Components that name no package version: their version is always latest. */
const VERSIONLESS: readonly Component[] = ['os', 'settings'];
export type Component = (typeof COMPONENTS)[number];

/** An execution's input once checked, every default filled in. */
export interface UpgradeRequest {
  readonly component: Component;
  /** An exact package version, or `latest` (resolved once, in the plan). */
  readonly version: string;
  /** A replica further behind than this blocks the start and each node's return. */
  readonly maxLagBytes: number;
  /** An open transaction older than this on the primary blocks the start. */
  readonly maxTransactionSeconds: number;
  readonly dryRun: boolean;
}

export interface RequestDefaults {
  readonly maxLagBytes: number;
  readonly maxTransactionSeconds: number;
  /** Whether the stack runs PEM (the pem component needs it). @default false */
  readonly pem?: boolean;
}

/** The same pattern the upgrade document enforces on its Version parameter. */
const VERSION = /^(?:latest|[0-9][A-Za-z0-9.+~:-]{0,63})$/;
const FIELDS = ['component', 'version', 'maxLagBytes', 'maxTransactionSeconds', 'dryRun'];

const given = (value: unknown) => (value === undefined ? 'nothing' : JSON.stringify(value));

function wholeNumber(input: Record<string, unknown>, field: string, max: number, fallback: number) {
  const value = input[field];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new InvalidInputError(
      `${field} must be a whole number from 0 to ${max}; got ${given(value)}`,
    );
  }
  return value;
}

/**
 * Checks an execution's input before anything is read or touched: every
 * error names the field, what is allowed and what was given.
 */
export function parseRequest(raw: unknown, defaults: RequestDefaults): UpgradeRequest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InvalidInputError(`the input must be a JSON object; got ${given(raw)}`);
  }
  const input = raw as Record<string, unknown>;
  const unknown = Object.keys(input).filter((key) => !FIELDS.includes(key));
  if (unknown.length) {
    throw new InvalidInputError(
      `unknown input field ${unknown.join(', ')}; the fields are ${FIELDS.join(', ')}`,
    );
  }
  const component = input.component;
  if (!COMPONENTS.includes(component as Component)) {
    throw new InvalidInputError(
      `component must be one of ${COMPONENTS.join(', ')}; got ${given(component)}`,
    );
  }
  if (component === 'pem' && !defaults.pem) {
    throw new InvalidInputError(
      'component pem needs PEM, and this stack was deployed without it (no EDB repository token, so no edb-pem and no web tier); got "pem"',
    );
  }
  const version = input.version;
  if (typeof version !== 'string' || !VERSION.test(version)) {
    throw new InvalidInputError(
      `version must be an exact package version (e.g. 15.20-0+deb12u1) or "latest"; got ${given(version)}`,
    );
  }
  if (VERSIONLESS.includes(component as Component) && version !== 'latest') {
    throw new InvalidInputError(
      `version must be "latest" for component ${String(component)}; got ${given(version)}`,
    );
  }
  if (input.dryRun !== undefined && typeof input.dryRun !== 'boolean') {
    throw new InvalidInputError(`dryRun must be true or false; got ${given(input.dryRun)}`);
  }
  return {
    component: component as Component,
    version,
    maxLagBytes: wholeNumber(input, 'maxLagBytes', 2 ** 40, defaults.maxLagBytes),
    maxTransactionSeconds: wholeNumber(
      input,
      'maxTransactionSeconds',
      86_400,
      defaults.maxTransactionSeconds,
    ),
    dryRun: input.dryRun === true,
  };
}
