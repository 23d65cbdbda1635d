import type { IConstruct } from 'constructs';

const JSII_RTTI = Symbol.for('jsii.rtti');

/**
 * A construct was given props it cannot build from. The message names the
 * construct's class and its path in the tree, then the prop, what is allowed
 * and what was given.
 *
 * aws-cdk-lib has its own scoped ValidationError, but it is `@internal` (its
 * constructor takes a branded literal string from a private module), so it is
 * not ours to throw; this one keeps the same `constructPath` field.
 */
export class ValidationError extends Error {
  /** Path of the construct whose props failed, e.g. `PemHa/Etcd`. */
  readonly constructPath: string;

  constructor(scope: IConstruct, message: string) {
    super(`${className(scope)} at ${scope.node.path}: ${message}`);
    this.name = 'ValidationError';
    this.constructPath = scope.node.path;
  }
}

/**
 * The construct's class name. aws-cdk-lib's compiled classes carry theirs in
 * jsii metadata (their runtime `name` can be `Stack2`); a subclass of one
 * inherits that metadata, so only a class's own counts.
 */
function className(scope: IConstruct): string {
  const type = scope.constructor as { [JSII_RTTI]?: { fqn: string } };
  const own = Object.prototype.hasOwnProperty.call(type, JSII_RTTI) ? type[JSII_RTTI] : undefined;
  return own?.fqn.split('.').pop() ?? scope.constructor.name;
}

/** Throws a ValidationError naming `prop` unless `value` is an integer from `min` to `max`. */
export function checkRange(
  scope: IConstruct,
  prop: string,
  value: number,
  min: number,
  max: number,
  unit = '',
): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(
      scope,
      `${prop} must be an integer from ${min} to ${max}${unit}; got ${value}`,
    );
  }
}
