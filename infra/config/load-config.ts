import { readFileSync } from 'node:fs';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { ConfigError, describeGiven, InvalidValue, Setting } from './setting';
import { SETTINGS, SettingName } from './schema';

export type AmiFamily = 'ubuntu-24.04' | 'debian-12';
export type PackageSource = 'pgdg' | 'os';

/** The PostgreSQL major each family's own repositories carry. */
export const OS_POSTGRES_MAJOR: Record<AmiFamily, number> = {
  'ubuntu-24.04': 16,
  'debian-12': 15,
};

export type NetworkConfig =
  | {
      readonly kind: 'new';
      readonly cidr: string;
      readonly natGateways: number;
      /** Undefined: the region's first three AZs, resolved at deploy time. */
      readonly availabilityZones?: readonly string[];
    }
  | {
      readonly kind: 'imported';
      readonly vpcId: string;
      readonly availabilityZones: readonly string[];
      readonly privateSubnetIds: readonly string[];
      readonly privateSubnetCidrs: readonly string[];
    };

export interface PatroniTiming {
  readonly ttl: number;
  readonly loopWait: number;
  readonly retryTimeout: number;
}

/** The validated, typed configuration every construct is built from. */
export interface PemHaConfig {
  readonly account?: string;
  readonly region?: string;
  readonly stackName: string;
  readonly clusterName: string;
  readonly network: NetworkConfig;
  readonly amiFamily: AmiFamily;
  readonly amiId?: string;
  readonly etcd: { readonly nodeCount: number; readonly instanceType: string };
  readonly backend: {
    readonly nodeCount: number;
    readonly instanceType: string;
    readonly dataVolumeSizeGiB: number;
    readonly postgresMajorVersion: number;
    readonly packageSource: PackageSource;
    readonly clientCidrs: readonly string[];
  };
  readonly patroni: PatroniTiming & {
    readonly synchronousMode: boolean;
    readonly maximumLagOnFailoverBytes: number;
  };
  readonly healthCheck: {
    readonly intervalSeconds: number;
    readonly healthyThreshold: number;
    readonly unhealthyThreshold: number;
    readonly replicaMaxLagBytes: number;
  };
  readonly certificates: {
    readonly validityDays: number;
    readonly renewBeforeDays: number;
    readonly expiryAlarmDays: number;
    /** An EventBridge schedule expression. */
    readonly rotationSchedule: string;
  };
  /** Present only when PEM is enabled: without PEM there is nothing for a web tier to serve. */
  readonly pem?: {
    readonly edbRepoTokenSecretName: string;
    readonly web: {
      readonly nodeCount: number;
      readonly instanceType: string;
      readonly internetFacing: boolean;
      readonly certificateArn?: string;
      readonly clientCidrs: readonly string[];
    };
  };
}

/** Context key naming a JSON file of settings; context values override the file's. */
export const CONFIG_FILE_KEY = 'configFile';

export type ContextReader = (key: string) => unknown;

/**
 * Reads every setting from context (and the optional config file), checks each
 * one and the rules between them, and reports all problems at once.
 */
export function loadConfig(
  readContext: ContextReader,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): PemHaConfig {
  const problems: string[] = [];
  const fromFile = readConfigFile(readContext(CONFIG_FILE_KEY), readFile, problems);
  const values = new Map<SettingName, unknown>();
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const setting: Setting<unknown> = SETTINGS[name];
    const raw = readContext(name) ?? fromFile[name];
    if (raw === undefined || raw === null) {
      values.set(name, setting.defaultValue);
      continue;
    }
    try {
      values.set(name, setting.parse(raw));
    } catch (error) {
      if (!(error instanceof InvalidValue)) throw error;
      problems.push(`${name}: must be ${setting.allowed}; got ${describeGiven(raw)}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const get = <T>(name: SettingName) => values.get(name) as T;
  const config = assemble(get, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

function readConfigFile(
  path: unknown,
  readFile: (path: string) => string,
  problems: string[],
): Record<string, unknown> {
  if (path === undefined) return {};
  if (typeof path !== 'string' || path === '') {
    problems.push(`${CONFIG_FILE_KEY}: must be a path to a JSON file; got ${describeGiven(path)}`);
    return {};
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFile(path));
  } catch (error) {
    problems.push(`${CONFIG_FILE_KEY}: cannot read ${path} as JSON (${(error as Error).message})`);
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    problems.push(`${CONFIG_FILE_KEY}: ${path} must hold a JSON object of settings`);
    return {};
  }
  const known = new Set(Object.keys(SETTINGS));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key)) {
      problems.push(
        `${CONFIG_FILE_KEY}: ${path} has unknown setting "${key}"; known settings: ${[...known].join(', ')}`,
      );
    }
  }
  return parsed as Record<string, unknown>;
}

function assemble(get: <T>(name: SettingName) => T, problems: string[]): PemHaConfig {
  const timing: PatroniTiming = {
    ttl: get<number>('patroniTtl'),
    loopWait: get<number>('patroniLoopWait'),
    retryTimeout: get<number>('patroniRetryTimeout'),
  };
  checkPatroniTiming(timing, get<boolean>('patroniFastFailover'), problems);
  const network = assembleNetwork(get, problems);
  const region = get<string | undefined>('region');
  const zones = network.availabilityZones ?? [];
  if (new Set(zones).size !== zones.length) {
    problems.push(`availabilityZones: must be 3 distinct AZ names; got ${describeGiven(zones)}`);
  }
  if (region && zones.some((zone) => !zone.startsWith(region))) {
    problems.push(
      `availabilityZones: must all be in region ${region}; got ${describeGiven(zones)}`,
    );
  }
  checkOsPackages(get, problems);
  const certificates = {
    validityDays: get<number>('certificateValidityDays'),
    renewBeforeDays: get<number>('certificateRenewBeforeDays'),
    expiryAlarmDays: get<number>('certificateExpiryAlarmDays'),
    rotationSchedule: get<string>('certificateRotationSchedule'),
  };
  checkCertificateTimings(certificates, problems);
  const pemEnabled = get<boolean>('pemEnabled');
  checkPinnedImageArchitecture(get, pemEnabled, problems);
  if (get<boolean>('webInternetFacing') && network.kind === 'imported' && pemEnabled) {
    problems.push(
      'webInternetFacing: must be false with an imported VPC (vpcId), whose public subnets pem-ha does not know; got true',
    );
  }

  return {
    account: get('account'),
    region,
    stackName: get('stackName'),
    clusterName: get('clusterName'),
    network,
    amiFamily: get('amiFamily'),
    amiId: get('amiId'),
    etcd: { nodeCount: get('etcdNodeCount'), instanceType: get('etcdInstanceType') },
    backend: {
      nodeCount: get('backendNodeCount'),
      instanceType: get('backendInstanceType'),
      dataVolumeSizeGiB: get('dataVolumeSizeGiB'),
      postgresMajorVersion: get('postgresMajorVersion'),
      packageSource: get('postgresPackageSource'),
      clientCidrs: get('databaseClientCidrs'),
    },
    patroni: {
      ...timing,
      synchronousMode: get('synchronousMode'),
      maximumLagOnFailoverBytes: get('maximumLagOnFailoverBytes'),
    },
    healthCheck: {
      intervalSeconds: get('healthCheckIntervalSeconds'),
      healthyThreshold: get('healthCheckHealthyThreshold'),
      unhealthyThreshold: get('healthCheckUnhealthyThreshold'),
      replicaMaxLagBytes: get('replicaMaxLagBytes'),
    },
    certificates,
    pem: pemEnabled
      ? {
          edbRepoTokenSecretName: get('edbRepoTokenSecretName'),
          web: {
            nodeCount: get('webNodeCount'),
            instanceType: get('webInstanceType'),
            internetFacing: get('webInternetFacing'),
            certificateArn: get('webCertificateArn'),
            clientCidrs: get('webClientCidrs'),
          },
        }
      : undefined,
  };
}

/** Renewal must come before the alarm, and both within a certificate's life. */
function checkCertificateTimings(
  timings: { validityDays: number; renewBeforeDays: number; expiryAlarmDays: number },
  problems: string[],
) {
  if (timings.renewBeforeDays >= timings.validityDays) {
    problems.push(
      `certificateRenewBeforeDays: must be less than certificateValidityDays (${timings.validityDays}), or every run renews everything; got ${timings.renewBeforeDays}`,
    );
  }
  if (timings.expiryAlarmDays >= timings.renewBeforeDays) {
    problems.push(
      `certificateExpiryAlarmDays: must be less than certificateRenewBeforeDays (${timings.renewBeforeDays}), so a renewal is due before the alarm; got ${timings.expiryAlarmDays}`,
    );
  }
}

/** The operating system's own repositories carry one PostgreSQL major. */
function checkOsPackages(get: <T>(name: SettingName) => T, problems: string[]) {
  if (get<PackageSource>('postgresPackageSource') !== 'os') return;
  const family = get<AmiFamily>('amiFamily');
  const major = get<number>('postgresMajorVersion');
  if (OS_POSTGRES_MAJOR[family] !== major) {
    problems.push(
      `postgresPackageSource: os gives PostgreSQL ${OS_POSTGRES_MAJOR[family]} on ${family}, so postgresMajorVersion must be ${OS_POSTGRES_MAJOR[family]} with it; got postgresMajorVersion ${major}`,
    );
  }
}

/** One AMI serves one CPU architecture; every tier it pins must share it. */
function checkPinnedImageArchitecture(
  get: <T>(name: SettingName) => T,
  pemEnabled: boolean,
  problems: string[],
) {
  const amiId = get<string | undefined>('amiId');
  if (!amiId) return;
  const tiers: SettingName[] = ['etcdInstanceType', 'backendInstanceType'];
  if (pemEnabled) tiers.push('webInstanceType');
  const byArchitecture = new Map<string, string[]>();
  for (const name of tiers) {
    const type = get<string>(name);
    const architecture = new ec2.InstanceType(type).architecture;
    byArchitecture.set(architecture, [
      ...(byArchitecture.get(architecture) ?? []),
      `${name}=${type}`,
    ]);
  }
  if (byArchitecture.size > 1) {
    const described = [...byArchitecture].map(([arch, types]) => `${arch}: ${types.join(', ')}`);
    problems.push(
      `amiId: one AMI serves one architecture, so every instance type must be all x86_64 or all arm64 when it is set; got ${amiId} with ${described.join('; ')}`,
    );
  }
}

/** Patroni's own rules for its timing settings (see its dynamic configuration docs). */
function checkPatroniTiming(timing: PatroniTiming, fastFailover: boolean, problems: string[]) {
  if (timing.ttl < 20 && !fastFailover) {
    problems.push(
      `patroniTtl: must be at least 20 s (Patroni's minimum) unless patroniFastFailover is true; got ${timing.ttl}`,
    );
  }
  const cycle = timing.loopWait + 2 * timing.retryTimeout;
  if (cycle > timing.ttl) {
    problems.push(
      `patroniTtl: must be at least patroniLoopWait + 2 × patroniRetryTimeout (Patroni's rule); got ttl ${timing.ttl} < ${timing.loopWait} + 2 × ${timing.retryTimeout} = ${cycle}`,
    );
  }
}

function assembleNetwork(get: <T>(name: SettingName) => T, problems: string[]): NetworkConfig {
  const vpcId = get<string | undefined>('vpcId');
  const availabilityZones = get<readonly string[] | undefined>('availabilityZones');
  const privateSubnetIds = get<readonly string[] | undefined>('vpcPrivateSubnetIds');
  const privateSubnetCidrs = get<readonly string[] | undefined>('vpcPrivateSubnetCidrs');
  if (vpcId === undefined) {
    for (const [name, value] of [
      ['vpcPrivateSubnetIds', privateSubnetIds],
      ['vpcPrivateSubnetCidrs', privateSubnetCidrs],
    ] as const) {
      if (value !== undefined) {
        problems.push(
          `${name}: is only allowed together with vpcId; got ${describeGiven(value)} without vpcId`,
        );
      }
    }
    return {
      kind: 'new',
      cidr: get('vpcCidr'),
      natGateways: get('natGateways'),
      availabilityZones,
    };
  }
  const missing = (
    [
      ['availabilityZones', availabilityZones],
      ['vpcPrivateSubnetIds', privateSubnetIds],
      ['vpcPrivateSubnetCidrs', privateSubnetCidrs],
    ] as const
  ).filter(([, value]) => value === undefined);
  for (const [name] of missing) {
    problems.push(`${name}: is required with vpcId (${SETTINGS[name].allowed}); got nothing`);
  }
  return {
    kind: 'imported',
    vpcId,
    availabilityZones: availabilityZones ?? [],
    privateSubnetIds: privateSubnetIds ?? [],
    privateSubnetCidrs: privateSubnetCidrs ?? [],
  };
}
