/**
 * The parameters node documents take, each with the pattern SSM enforces
 * before a command runs. SSM pastes values into the script text, so every
 * pattern excludes quotes, `$`, backticks and newlines: a value can only ever
 * be data inside the single-quoted assignment the preamble makes of it.
 */

import { Token } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { ValidationError } from './errors';

const IPV4 = String.raw`(?:\d{1,3}\.){3}\d{1,3}`;
const listOf = (item: string) => `^${item}(?:,${item})*$`;
const optionalListOf = (item: string) => `^(?:${item}(?:,${item})*)?$`;

export const PATTERNS = {
  name: '^[a-z][a-z0-9-]{0,62}$',
  ipv4: `^${IPV4}$`,
  ipv4List: listOf(IPV4),
  optionalIpv4List: optionalListOf(IPV4),
  nameList: listOf('[a-z][a-z0-9-]{0,62}'),
  cidrList: optionalListOf(`${IPV4}/\\d{1,2}`),
  hostPortList: listOf(`${IPV4}:\\d{1,5}`),
  initialCluster: listOf(`[a-z][a-z0-9-]*=https://${IPV4}:2380`),
  integer: String.raw`^\d{1,13}$`,
  volumeId: '^vol-[0-9a-f]{8,17}$',
  secretName: '^[A-Za-z0-9/_+=.@-]{1,512}$',
  identities: '^[a-z-]+(?:,[a-z-]+)*$',
  base64OrDash: '^(?:-|[A-Za-z0-9+/=]{4,50000})$',
  packageVersion: '^(?:latest|[0-9][A-Za-z0-9.+~:-]{0,63})$',
  bucketName: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$',
  region: '^[a-z][a-z0-9-]{1,30}[0-9]$',
  hostName: '^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$',
  /** A load balancer's DNS name as AWS gives it (its name part may have capitals), or nothing. */
  optionalDnsName: '^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)?$',
  kmsKeyArn: '^arn:aws[a-z-]*:kms:[a-z0-9-]+:\\d{12}:key/[0-9a-f-]{36}$',
  repositoryPath: '^/[a-z][a-z0-9-]{0,62}$',
  metricsNamespace: '^[A-Za-z][A-Za-z0-9/_-]{0,254}$',
  /** The restore runbook's target, as the restore function normalizes it. */
  restoreTarget: String.raw`^(?:none|latest|time=\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?\+00|lsn=[0-9A-F]{1,8}/[0-9A-F]{1,8}|name=[A-Za-z0-9_.-]{1,63})$`,
  /** A pgBackRest backup label, or latest. */
  backupSet: String.raw`^(?:latest|\d{8}-\d{6}F(?:_\d{8}-\d{6}[DI])?)$`,
} as const;

export interface DocumentParameter {
  /** SSM parameter name, e.g. `MemberName`. */
  readonly name: string;
  readonly description: string;
  readonly allowedPattern?: string;
  readonly allowedValues?: readonly string[];
  /** Absent: the caller must pass a value. */
  readonly default?: string;
}

/** `MemberName` -> `MEMBER_NAME`: the shell variable a parameter becomes. */
export function shellVariable(parameterName: string): string {
  return parameterName.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** Checks a default against its own pattern: a bad default fails synth, not a node. */
export function checkDefault(
  scope: IConstruct,
  document: string,
  parameter: DocumentParameter,
): void {
  const value = parameter.default;
  // A deploy-time value (a bucket name, a key ARN) is checked by SSM when a command runs.
  if (value === undefined || Token.isUnresolved(value)) return;
  const patternOk =
    parameter.allowedPattern === undefined || new RegExp(parameter.allowedPattern).test(value);
  const valueOk = parameter.allowedValues === undefined || parameter.allowedValues.includes(value);
  if (!patternOk || !valueOk) {
    const allowed = parameter.allowedValues
      ? `one of ${parameter.allowedValues.join(', ')}`
      : `text matching ${parameter.allowedPattern}`;
    throw new ValidationError(
      scope,
      `${document} document: parameter ${parameter.name} must be ${allowed}; got ${JSON.stringify(value)}`,
    );
  }
}
