/**
 * Parameter Store's String parameters as SSM keeps them (PutParameter,
 * GetParameter), in a file of the rig's state so every process of a rig and
 * a second `up` see the same values.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { AwsError } from './ssm';

interface StoredParameter {
  readonly name: string;
  readonly value: string;
  readonly version: number;
  readonly modified: string;
}

export class LocalParameters {
  /** The values when no file keeps them. */
  private memory: Record<string, StoredParameter> = {};

  constructor(
    private readonly file: string | undefined,
    /** Where the ARNs place the parameters. */
    private readonly where: { readonly region: string; readonly accountId: string },
  ) {}

  put(input: Record<string, unknown>): unknown {
    const name = String(input.Name ?? '');
    if (!name) throw new AwsError('ValidationException', 'Name is required');
    if (input.Type !== undefined && input.Type !== 'String')
      throw new AwsError(
        'ValidationException',
        `the rig keeps String parameters only, not ${String(input.Type)}`,
      );
    const all = this.read();
    const existing = all[name];
    if (existing && input.Overwrite !== true)
      throw new AwsError('ParameterAlreadyExists', `The parameter already exists: ${name}`);
    const version = (existing?.version ?? 0) + 1;
    all[name] = {
      name,
      value: String(input.Value ?? ''),
      version,
      modified: new Date().toISOString(),
    };
    this.write(all);
    return { Version: version, Tier: 'Standard' };
  }

  get(input: Record<string, unknown>): unknown {
    const name = String(input.Name ?? '');
    const parameter = this.read()[name];
    if (!parameter) throw new AwsError('ParameterNotFound', `Parameter ${name} not found.`);
    return {
      Parameter: {
        Name: name,
        Type: 'String',
        Value: parameter.value,
        Version: parameter.version,
        LastModifiedDate: Date.parse(parameter.modified) / 1000,
        ARN: `arn:aws:ssm:${this.where.region}:${this.where.accountId}:parameter${name.startsWith('/') ? '' : '/'}${name}`,
        DataType: 'text',
      },
    };
  }

  /** A parameter's value, for tests and the command line. */
  valueOf(name: string): string | undefined {
    return this.read()[name]?.value;
  }

  private read(): Record<string, StoredParameter> {
    if (!this.file || !existsSync(this.file)) return this.memory;
    return JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, StoredParameter>;
  }

  private write(all: Record<string, StoredParameter>): void {
    this.memory = all;
    if (this.file) writeFileSync(this.file, JSON.stringify(all), { mode: 0o600 });
  }
}
