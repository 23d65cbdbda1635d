/**
 * One user-facing setting: how it is named, documented, parsed and checked.
 *
 * Values arrive either as JSON values (config file, cdk.json context) or as
 * strings (`cdk synth -c key=value`), so every parser accepts both forms.
 */
export interface Setting<T> {
  readonly description: string;
  /** What is allowed, in words; used in errors and in the README table. */
  readonly allowed: string;
  /** `undefined` means the setting is optional and has no default. */
  readonly defaultValue: T | undefined;
  /** How the default is found when another setting decides it (README table). */
  readonly defaultText?: string;
  /** Returns the parsed value or throws `InvalidValue` with the reason. */
  parse(raw: unknown): T;
}

/**
 * Raised by a parser; the loader adds the setting's name and allowed values,
 * and the reason too when it says more than they do (`explains`).
 */
export class InvalidValue extends Error {
  constructor(
    reason: string,
    readonly explains = false,
  ) {
    super(reason);
    this.name = 'InvalidValue';
  }
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid pem-ha configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function describeGiven(raw: unknown): string {
  return typeof raw === 'string' ? JSON.stringify(raw) : (JSON.stringify(raw) ?? String(raw));
}

function toInteger(raw: unknown): number {
  // Plain decimal digits only: Number() would also take '0x5', '1e1' or '5.'.
  const value = typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new InvalidValue('not an integer');
  }
  return value;
}

export function integer(opts: {
  description: string;
  defaultValue?: number;
  defaultText?: string;
  min: number;
  max: number;
  odd?: boolean;
  unit?: string;
}): Setting<number> {
  const unit = opts.unit ? ` ${opts.unit}` : '';
  const allowed = `${opts.odd ? 'an odd integer' : 'an integer'} from ${opts.min} to ${opts.max}${unit}`;
  return {
    description: opts.description,
    allowed,
    defaultValue: opts.defaultValue,
    defaultText: opts.defaultText,
    parse(raw) {
      const value = toInteger(raw);
      if (value < opts.min || value > opts.max) throw new InvalidValue('out of range');
      if (opts.odd && value % 2 === 0) throw new InvalidValue('even');
      return value;
    },
  };
}

export function boolean(opts: { description: string; defaultValue: boolean }): Setting<boolean> {
  return {
    description: opts.description,
    allowed: 'true or false',
    defaultValue: opts.defaultValue,
    parse(raw) {
      if (raw === true || raw === 'true') return true;
      if (raw === false || raw === 'false') return false;
      throw new InvalidValue('not a boolean');
    },
  };
}

export function oneOf<T extends string | number>(opts: {
  description: string;
  defaultValue: T;
  values: readonly T[];
}): Setting<T> {
  return {
    description: opts.description,
    allowed: `one of ${opts.values.map((v) => String(v)).join(', ')}`,
    defaultValue: opts.defaultValue,
    parse(raw) {
      // Only scalars: String([17]) is '17', so a JSON array would otherwise match.
      if (typeof raw !== 'string' && typeof raw !== 'number') throw new InvalidValue('not allowed');
      const match = opts.values.find((v) => String(v) === String(raw));
      if (match === undefined) throw new InvalidValue('not allowed');
      return match;
    },
  };
}

export function text(opts: {
  description: string;
  defaultValue?: string;
  pattern: RegExp | ((value: string) => boolean);
  allowed: string;
}): Setting<string> {
  const { pattern } = opts;
  const matches = typeof pattern === 'function' ? pattern : (value: string) => pattern.test(value);
  return {
    description: opts.description,
    allowed: opts.allowed,
    defaultValue: opts.defaultValue,
    parse(raw) {
      if (typeof raw !== 'string' || !matches(raw)) throw new InvalidValue('bad format');
      return raw;
    },
  };
}

/** A list given as a JSON array or, on the command line, as comma-separated text. */
export function list(opts: {
  description: string;
  defaultValue?: readonly string[];
  item: (value: string) => boolean;
  allowed: string;
  minItems?: number;
  maxItems?: number;
}): Setting<readonly string[]> {
  return {
    description: opts.description,
    allowed: opts.allowed,
    defaultValue: opts.defaultValue,
    parse(raw) {
      const items = parseList(raw);
      if (items.length < (opts.minItems ?? 0) || items.length > (opts.maxItems ?? Infinity)) {
        throw new InvalidValue('wrong number of items');
      }
      const bad = items.find((item) => !opts.item(item));
      if (bad !== undefined) throw new InvalidValue(`bad item ${JSON.stringify(bad)}`);
      return items;
    },
  };
}

function parseList(raw: unknown): string[] {
  if (Array.isArray(raw) && raw.every((item) => typeof item === 'string')) return raw;
  if (typeof raw === 'string') {
    const trimmed = raw.trim();
    if (trimmed.startsWith('[')) {
      try {
        return parseList(JSON.parse(trimmed));
      } catch {
        throw new InvalidValue('not a list');
      }
    }
    return trimmed === '' ? [] : trimmed.split(',').map((item) => item.trim());
  }
  throw new InvalidValue('not a list');
}
