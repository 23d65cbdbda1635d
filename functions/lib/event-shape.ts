/**
 * Shape checks for the events Step Functions hands the task functions: a
 * malformed event (a hand-started execution, a definition edited by hand)
 * ends in InvalidRequestError naming the field, what is allowed and what
 * was given, before any AWS call, instead of a TypeError deep inside.
 */
import type { NodeFacts } from './pki';
import type { CommandRef } from './ssm-run';
import { InvalidRequestError } from './ssm-run';
import { TIERS } from './inventory';

type Fields = Record<string, unknown>;

const given = (value: unknown) => (value === undefined ? 'nothing' : JSON.stringify(value));

/** `value` as an object, or InvalidRequestError naming `path`. */
export function objectAt(value: unknown, path: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidRequestError(`${path} must be an object; got ${given(value)}`);
  }
  return value as Fields;
}

/** A non-empty string field, or InvalidRequestError naming `path.field`. */
export function textAt(fields: Fields, field: string, path: string): string {
  const value = fields[field];
  if (typeof value !== 'string' || value === '') {
    throw new InvalidRequestError(
      `${path}.${field} must be a non-empty string; got ${given(value)}`,
    );
  }
  return value;
}

/** The reference to a sent command that the node-command function returned. */
export function commandRefAt(value: unknown, path: string): CommandRef {
  const fields = objectAt(value, path);
  for (const field of ['commandId', 'instanceId', 'nodeName']) textAt(fields, field, path);
  return fields as unknown as CommandRef;
}

/**
 * A node of the inventory, as far as its certificates need it. The
 * inventory carries the PEM agent number as a string ('0' for none), as SSM
 * parameters are; a node with none is entitled to no agent certificate.
 */
export function nodeFactsAt(value: unknown, path: string): NodeFacts {
  const fields = objectAt(value, path);
  const name = textAt(fields, 'name', path);
  const address = textAt(fields, 'address', path);
  const tier = fields.tier;
  if (!TIERS.includes(tier as never)) {
    throw new InvalidRequestError(
      `${path}.tier must be one of ${TIERS.join(', ')}; got ${given(tier)}`,
    );
  }
  const agent = fields.agentId;
  if (agent !== undefined && !/^(0|[1-9][0-9]{0,5})$/.test(String(agent))) {
    throw new InvalidRequestError(
      `${path}.agentId must be a whole number ('0' for none) when given; got ${given(agent)}`,
    );
  }
  const agentId = agent === undefined ? 0 : Number(agent);
  return { name, address, tier: tier as NodeFacts['tier'], ...(agentId > 0 && { agentId }) };
}
