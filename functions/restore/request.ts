import { InvalidInputError } from '../lib/errors';

export { InvalidInputError };

/** The targets the input may name, one of them. */
const TARGET_FIELDS = ['time', 'lsn', 'restorePoint', 'latest'] as const;
const FIELDS: readonly string[] = [...TARGET_FIELDS, 'confirm'];
const EXAMPLE = '{"confirm": "<clusterName>", "time": "2026-12-01T09:30:00Z"}';

/** A checked restore request: the target as the patroni document's RestoreTarget takes it. */
export interface RestoreRequest {
  /** `latest`, `time=YYYY-MM-DD HH:MM:SS.mmm+00`, `lsn=X/Y` or `name=...`. */
  readonly target: string;
  /** For a time target, epoch milliseconds (compared with the backups). */
  readonly targetTime?: number;
}

// An offset is required: a time without one would be read in the server's zone.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2})$/;
const LSN = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;
const RESTORE_POINT = /^[A-Za-z0-9_.-]{1,63}$/;

const given = (value: unknown) => JSON.stringify(value) ?? String(value);

/**
 * Checks the input's shape, the confirmation and the target's form; `now`
 * bounds a time target. Every error names the field, what is allowed and
 * what was given.
 */
export function parseRestoreRequest(
  input: unknown,
  clusterName: string,
  now = new Date(),
): RestoreRequest {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidInputError(
      `the input must be an object such as ${EXAMPLE}; got ${given(input)}`,
    );
  }
  const fields = input as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((key) => !FIELDS.includes(key));
  if (unknown.length) {
    throw new InvalidInputError(
      `unknown field ${unknown.map((key) => `"${key}"`).join(', ')}; the fields are ${FIELDS.join(', ')}`,
    );
  }
  if (fields.confirm !== clusterName) {
    throw new InvalidInputError(
      `confirm must be the cluster's name, "${clusterName}": a restore replaces every backend's data; got ${given(fields.confirm)}`,
    );
  }
  const named = TARGET_FIELDS.filter((key) => fields[key] !== undefined);
  if (named.length !== 1) {
    throw new InvalidInputError(
      `name exactly one target of ${TARGET_FIELDS.join(', ')}; got ${named.length ? named.join(' and ') : 'none'}`,
    );
  }
  const value = fields[named[0]];
  switch (named[0]) {
    case 'latest':
      if (value !== true) {
        throw new InvalidInputError(
          `latest must be true (the end of the archive); got ${given(value)}`,
        );
      }
      return { target: 'latest' };
    case 'time': {
      const at = typeof value === 'string' && ISO_TIME.test(value) ? new Date(value) : undefined;
      if (!at || Number.isNaN(at.getTime())) {
        throw new InvalidInputError(
          `time must be an ISO 8601 time with its offset, such as 2026-12-01T09:30:00Z; got ${given(value)}`,
        );
      }
      if (at.getTime() > now.getTime()) {
        throw new InvalidInputError(
          `time must not be in the future (it is ${now.toISOString()} now); got ${given(value)}`,
        );
      }
      const target = `time=${at.toISOString().replace('T', ' ').replace('Z', '+00')}`;
      return { target, targetTime: at.getTime() };
    }
    case 'lsn':
      if (typeof value !== 'string' || !LSN.test(value)) {
        throw new InvalidInputError(
          `lsn must be a PostgreSQL LSN such as 0/5000028; got ${given(value)}`,
        );
      }
      return { target: `lsn=${value.toUpperCase()}` };
    default:
      if (typeof value !== 'string' || !RESTORE_POINT.test(value)) {
        throw new InvalidInputError(
          `restorePoint must be the name given to pg_create_restore_point (letters, digits, _ . -, at most 63); got ${given(value)}`,
        );
      }
      return { target: `name=${value}` };
  }
}
