import { readFileSync } from 'node:fs';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { ConfigError, describeGiven, InvalidValue, Setting } from './setting';
import { SETTINGS, SettingName } from './schema';
import { isPostgresql17Parameter, PostgresqlParameters } from './postgresql-parameters';

export type AmiFamily = 'ubuntu-24.04' | 'debian-12' | 'debian-13';
export type PackageSource = 'pgdg' | 'os';
export type PatroniFailoverProfile = 'standard' | 'fast';

/** The PostgreSQL major and Patroni release each family's own repositories carry. */
export const OS_PACKAGES: Record<
  AmiFamily,
  { readonly postgresMajor: number; readonly patroni: string }
> = {
  'ubuntu-24.04': { postgresMajor: 16, patroni: '3.2.2' },
  'debian-12': { postgresMajor: 15, patroni: '3.0.2' },
  'debian-13': { postgresMajor: 17, patroni: '4.0.7' },
};

/**
 * Context key that lets the local rig's Debian 12 upgrade suite synthesize
 * Debian 12's own Patroni 3.0.2, which users are never offered (see
 * checkOsPackages). Not a setting: it is absent from the settings table.
 */
export const RIG_ONLY_ALLOW_PATRONI_302 = 'pem-ha:rig-only:allow-patroni-3.0.2';

/** Patroni timing of each failover profile (Patroni 4 honours both unchanged). */
export const PATRONI_PROFILES: Record<PatroniFailoverProfile, PatroniTiming> = {
  standard: { ttl: 30, loopWait: 10, retryTimeout: 10 },
  fast: { ttl: 20, loopWait: 2, retryTimeout: 9 },
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
  /** Set on every member through Patroni's dynamic configuration. */
  readonly postgresqlParameters: PostgresqlParameters;
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
  readonly backup: {
    readonly archiveTimeoutSeconds: number;
    readonly retentionDays: number;
    /** EventBridge schedule expressions. */
    readonly fullSchedule: string;
    readonly diffSchedule: string;
    readonly archiveAgeAlarmSeconds: number;
    readonly ageAlarmHours: number;
  };
  readonly alarms: {
    /** @default - no subscription */
    readonly email?: string;
    /** @default - a new topic of the cluster's own */
    readonly topicArn?: string;
    readonly replayDelaySeconds: number;
    readonly longTransactionSeconds: number;
    readonly xidAge: number;
    readonly connectionsPercent: number;
    readonly dataVolumeFreePercent: number;
    readonly pendingRestartHours: number;
  };
  /** @default - only the roles each secret is made for read it */
  readonly secretsBreakGlassRoleArn?: string;
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
      const reason = error.explains ? `${error.message}. ` : '';
      problems.push(`${name}: ${reason}must be ${setting.allowed}; got ${describeGiven(raw)}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const get = <T>(name: SettingName) => values.get(name) as T;
  const config = assemble(get, readContext(RIG_ONLY_ALLOW_PATRONI_302) === 'true', problems);
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

function assemble(
  get: <T>(name: SettingName) => T,
  allowPatroni302: boolean,
  problems: string[],
): PemHaConfig {
  const profile = PATRONI_PROFILES[get<PatroniFailoverProfile>('patroniFailoverProfile')];
  const timing: PatroniTiming = {
    ttl: get<number | undefined>('patroniTtl') ?? profile.ttl,
    loopWait: get<number | undefined>('patroniLoopWait') ?? profile.loopWait,
    retryTimeout: get<number | undefined>('patroniRetryTimeout') ?? profile.retryTimeout,
  };
  checkPatroniTiming(timing, problems);
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
  checkOsPackages(get, allowPatroni302, problems);
  checkParameterNames(get, problems);
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

  if (get('alarmEmail') !== undefined && get('alarmTopicArn') !== undefined) {
    problems.push(
      `alarmEmail: cannot be given with alarmTopicArn (alarms go to that existing topic: subscribe the address there); got alarmEmail ${describeGiven(get('alarmEmail'))} and alarmTopicArn ${describeGiven(get('alarmTopicArn'))}`,
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
    postgresqlParameters: get('postgresqlParameters'),
    healthCheck: {
      intervalSeconds: get('healthCheckIntervalSeconds'),
      healthyThreshold: get('healthCheckHealthyThreshold'),
      unhealthyThreshold: get('healthCheckUnhealthyThreshold'),
      replicaMaxLagBytes: get('replicaMaxLagBytes'),
    },
    certificates,
    backup: {
      archiveTimeoutSeconds: get('archiveTimeoutSeconds'),
      retentionDays: get('backupRetentionDays'),
      fullSchedule: get<string>('backupFullSchedule'),
      diffSchedule: get<string>('backupDiffSchedule'),
      archiveAgeAlarmSeconds: get('archiveAgeAlarmSeconds'),
      ageAlarmHours: get('backupAgeAlarmHours'),
    },
    alarms: {
      email: get('alarmEmail'),
      topicArn: get('alarmTopicArn'),
      replayDelaySeconds: get('replicaReplayDelayAlarmSeconds'),
      longTransactionSeconds: get('longTransactionAlarmSeconds'),
      xidAge: get('xidAgeAlarm'),
      connectionsPercent: get('connectionsAlarmPercent'),
      dataVolumeFreePercent: get('dataVolumeFreeAlarmPercent'),
      pendingRestartHours: get('pendingRestartAlarmHours'),
    },
    secretsBreakGlassRoleArn: get('secretsBreakGlassRoleArn'),
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

/**
 * The operating system's own repositories carry one PostgreSQL major and one
 * Patroni. Patroni before 3.0.3 can lose acknowledged writes: a leader that was
 * cut off from etcd (or frozen) and comes back after a failover puts its old
 * leader key back, demotes the new primary and has it rewound
 * (patroni/patroni#2689; 529 writes lost on the rig). Debian 12 ships 3.0.2.
 */
function checkOsPackages(
  get: <T>(name: SettingName) => T,
  allowPatroni302: boolean,
  problems: string[],
) {
  if (get<PackageSource>('postgresPackageSource') !== 'os') return;
  const family = get<AmiFamily>('amiFamily');
  const major = get<number>('postgresMajorVersion');
  const os = OS_PACKAGES[family];
  if (family === 'debian-12' && !allowPatroni302) {
    problems.push(
      `postgresPackageSource: os on amiFamily debian-12 deploys Debian 12's Patroni ${os.patroni}, which can lose acknowledged writes when a cut-off leader returns after a failover (fixed in 3.0.3); use amiFamily debian-13 or postgresPackageSource pgdg; got postgresPackageSource os with amiFamily debian-12`,
    );
  } else if (os.postgresMajor !== major) {
    problems.push(
      `postgresPackageSource: os gives PostgreSQL ${os.postgresMajor} on ${family}, so postgresMajorVersion must be ${os.postgresMajor} with it; got postgresMajorVersion ${major}`,
    );
  }
}

/**
 * Patroni drops a parameter its PostgreSQL does not know with only a line in
 * its log, so a misspelt name would be set nowhere. Checked for major 17,
 * whose list pem-ha carries; an extension's (dotted) names are its own.
 */
function checkParameterNames(get: <T>(name: SettingName) => T, problems: string[]) {
  if (get<number>('postgresMajorVersion') !== 17) return;
  const parameters = get<PostgresqlParameters>('postgresqlParameters');
  const unknown = Object.keys(parameters).filter(
    (name) => !name.includes('.') && !isPostgresql17Parameter(name),
  );
  if (unknown.length) {
    problems.push(
      `postgresqlParameters: must name PostgreSQL 17 parameters (Patroni drops unknown ones without a word); got ${unknown.join(', ')}`,
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

/**
 * Patroni's own rule for its timing (patroni/config.py in 4.0): when
 * loop_wait + 2 × retry_timeout exceeds ttl it silently lowers loop_wait, then
 * retry_timeout. Refused here instead, so what is configured is what runs.
 */
function checkPatroniTiming(timing: PatroniTiming, problems: string[]) {
  const cycle = timing.loopWait + 2 * timing.retryTimeout;
  if (cycle > timing.ttl) {
    problems.push(
      `patroniTtl: must be at least patroniLoopWait + 2 × patroniRetryTimeout, or Patroni lowers them itself; got ttl ${timing.ttl} < ${timing.loopWait} + 2 × ${timing.retryTimeout} = ${cycle}`,
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
