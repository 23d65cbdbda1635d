/**
 * A function's settings from its environment (its construct sets them). Handlers read them per
 * invocation, so a bad one fails the task with an error naming the variable, not the cold start.
 */

/** A variable the function cannot work without. */
export function setting(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (!value) {
    throw new Error(
      `environment variable ${name} must be set; it is ${value === undefined ? 'missing' : 'empty'}`,
    );
  }
  return value;
}

export interface WholeNumberBounds {
  /** The smallest value allowed. */
  readonly min: number;
  /** What the number counts (`bytes`, `seconds`), for the error. */
  readonly unit?: string;
}

/** A variable holding a whole number (digits only) of at least `bounds.min`. */
export function wholeNumberSetting(
  name: string,
  bounds: WholeNumberBounds,
  env: NodeJS.ProcessEnv = process.env,
): number {
  const raw = env[name];
  const value = Number(raw);
  if (
    raw === undefined ||
    !/^[0-9]+$/.test(raw) ||
    !Number.isSafeInteger(value) ||
    value < bounds.min
  ) {
    const what = bounds.unit ? `a whole number of ${bounds.unit}` : 'a whole number';
    const given = raw === undefined ? 'nothing' : JSON.stringify(raw);
    throw new Error(
      `environment variable ${name} must be ${what}, ${bounds.min} or more; got ${given}`,
    );
  }
  return value;
}
