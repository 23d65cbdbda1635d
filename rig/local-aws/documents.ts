/**
 * SSM document semantics the rig must match: parameter validation (required,
 * allowedValues, allowedPattern, defaults) and `{{ name }}` substitution.
 */

export interface DocumentParameterSpec {
  readonly type?: string;
  readonly default?: string;
  readonly allowedPattern?: string;
  readonly allowedValues?: readonly string[];
}

export interface RunShellScriptStep {
  readonly action: string;
  readonly name: string;
  readonly inputs: {
    readonly runCommand: readonly string[];
    readonly timeoutSeconds?: string | number;
    readonly workingDirectory?: string;
  };
}

export interface CommandDocument {
  readonly schemaVersion: string;
  readonly parameters?: Record<string, DocumentParameterSpec>;
  readonly mainSteps: readonly RunShellScriptStep[];
}

/** SSM's InvalidParameters: raised before anything runs. */
export class InvalidParametersError extends Error {
  readonly awsType = 'InvalidParameters';
}

/** The parameter values a command runs with, after SSM's checks and defaults. */
export function resolveParameters(
  document: CommandDocument,
  given: Readonly<Record<string, readonly string[]>>,
): Record<string, string> {
  const specs = document.parameters ?? {};
  for (const name of Object.keys(given)) {
    if (!(name in specs))
      throw new InvalidParametersError(`Parameter ${name} is not defined in the document`);
  }
  const values: Record<string, string> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const list = given[name];
    if (list !== undefined && list.length !== 1 && (spec.type ?? 'String') === 'String') {
      throw new InvalidParametersError(
        `Parameter ${name} is a String and takes exactly one value; got ${list.length}`,
      );
    }
    const value = list !== undefined ? list.join(',') : spec.default;
    if (value === undefined)
      throw new InvalidParametersError(`Parameter ${name} is required and has no default`);
    if (spec.allowedValues && !spec.allowedValues.includes(value)) {
      throw new InvalidParametersError(
        `Parameter ${name} must be one of ${spec.allowedValues.join(', ')}; got ${JSON.stringify(value)}`,
      );
    }
    // SSM matches allowedPattern against the whole value.
    if (spec.allowedPattern && !new RegExp(`^(?:${spec.allowedPattern})$`).test(value)) {
      throw new InvalidParametersError(
        `Parameter ${name} must match ${spec.allowedPattern}; got ${JSON.stringify(value)}`,
      );
    }
    values[name] = value;
  }
  return values;
}

/** `{{ name }}` (any inner whitespace) of declared parameters; other braces stay. */
export function substitute(text: string, values: Readonly<Record<string, string>>): string {
  return text.replace(/\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g, (match, name: string) =>
    name in values ? values[name] : match,
  );
}
