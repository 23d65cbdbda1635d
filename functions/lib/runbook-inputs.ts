/**
 * What the execution input of each runbook without a planning function of
 * its own may hold. The check-input function applies this in a runbook's
 * first state, before the lock and before any node: a misspelt field
 * (`{"renewBeforeDay": 3650}`) ends the run with InvalidInputError instead
 * of a run that "succeeds" having done something else. The upgrade,
 * failover, restore and replacement runbooks check theirs in their own
 * first task, against the cluster.
 */
import { InvalidInputError } from './errors';
import { outsideAgentEntitlement } from './outside-agent';

/** The widest renewal threshold a rotation may ask for (forcing a renewal of everything). */
export const MAX_RENEW_BEFORE_DAYS = 3650;

export const BACKUP_TYPES = ['full', 'diff'] as const;
export type BackupType = (typeof BACKUP_TYPES)[number];

interface FieldRule {
  /** What is allowed, as the error says it: "must be <allowed>". */
  readonly allowed: string;
  readonly accepts: (value: unknown) => boolean;
}

interface InputSpec {
  readonly fields: Readonly<Record<string, FieldRule>>;
  readonly required?: readonly string[];
  /** A valid input, quoted in every error. */
  readonly example: string;
}

const wholeDays: FieldRule = {
  allowed: `a whole number of days from 1 to ${MAX_RENEW_BEFORE_DAYS}`,
  accepts: (value) =>
    typeof value === 'number' &&
    Number.isInteger(value) &&
    value >= 1 &&
    value <= MAX_RENEW_BEFORE_DAYS,
};

const backupType: FieldRule = {
  allowed: BACKUP_TYPES.join(' or '),
  accepts: (value) => BACKUP_TYPES.includes(value as BackupType),
};

const agentUser: FieldRule = {
  allowed:
    "a PostgreSQL role name of lower-case letters, digits and _ that is not agent<N>, pg_* or one of the cluster's own roles",
  accepts: (value) => {
    try {
      outsideAgentEntitlement(value);
      return true;
    } catch {
      return false;
    }
  },
};

/** A CSR is a few hundred characters; a bound keeps the execution input small. */
const MAX_CSR_LENGTH = 16_384;
const certificateRequest: FieldRule = {
  allowed: `a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----) of at most ${MAX_CSR_LENGTH} characters`,
  accepts: (value) =>
    typeof value === 'string' &&
    value.length <= MAX_CSR_LENGTH &&
    /^\s*-----BEGIN CERTIFICATE REQUEST-----\n[\s\S]+\n-----END CERTIFICATE REQUEST-----\s*$/.test(
      value,
    ),
};

export const RUNBOOK_INPUTS = {
  bootstrap: { fields: {}, example: '{}' },
  rotation: { fields: { renewBeforeDays: wholeDays }, example: '{"renewBeforeDays": 30}' },
  'root-rollover': { fields: {}, example: '{}' },
  backup: { fields: { type: backupType }, required: ['type'], example: '{"type": "full"}' },
  'backup-health': { fields: {}, example: '{}' },
  'agent-certificate': {
    fields: { agentUser: agentUser, csr: certificateRequest },
    required: ['agentUser', 'csr'],
    example: '{"agentUser": "agent_orders_db", "csr": "-----BEGIN CERTIFICATE REQUEST-----\\n..."}',
  },
} as const satisfies Record<string, InputSpec>;

/** A runbook whose input the check-input function checks. */
export type CheckedRunbook = keyof typeof RUNBOOK_INPUTS;

const given = (value: unknown) => (value === undefined ? 'nothing' : JSON.stringify(value));

/** Throws InvalidInputError naming the field, what is allowed and what was given. */
export function checkRunbookInput(runbook: string, input: unknown): void {
  if (!Object.hasOwn(RUNBOOK_INPUTS, runbook)) {
    throw new InvalidInputError(
      `runbook must be one of ${Object.keys(RUNBOOK_INPUTS).join(', ')}; got ${given(runbook)}`,
    );
  }
  const spec: InputSpec = RUNBOOK_INPUTS[runbook as CheckedRunbook];
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidInputError(
      `the ${runbook} runbook's input must be a JSON object such as ${spec.example}; got ${given(input)}`,
    );
  }
  const names = Object.keys(spec.fields);
  const unknown = Object.keys(input).filter((key) => !names.includes(key));
  if (unknown.length) {
    const takes = names.length ? `takes only ${names.join(', ')}` : 'takes no field';
    throw new InvalidInputError(
      `unknown field ${unknown.map((key) => JSON.stringify(key)).join(', ')}: the ${runbook} runbook ${takes}, as in ${spec.example}`,
    );
  }
  const record = input as Record<string, unknown>;
  for (const name of spec.required ?? []) {
    if (record[name] === undefined) {
      throw new InvalidInputError(
        `${name} is required: the ${runbook} runbook's input must name it, as in ${spec.example}; got ${given(input)}`,
      );
    }
  }
  for (const [name, rule] of Object.entries(spec.fields)) {
    if (record[name] !== undefined && !rule.accepts(record[name])) {
      throw new InvalidInputError(`${name} must be ${rule.allowed}; got ${given(record[name])}`);
    }
  }
}
