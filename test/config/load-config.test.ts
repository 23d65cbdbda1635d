import {
  ContextReader,
  loadConfig,
  PemHaConfig,
  RIG_ONLY_ALLOW_PATRONI_302,
} from '../../infra/config/load-config';
import { SETTINGS, SettingName } from '../../infra/config/schema';
import { ConfigError } from '../../infra/config/setting';

type Settings = Record<string, unknown>;

const HEADER = 'Invalid pem-ha configuration:';

function contextOf(settings: Settings): ContextReader {
  return (key) => settings[key];
}

/** A readFile that serves the given files and fails like fs for any other path. */
function filesOf(files: Record<string, string>): (path: string) => string {
  return (path) => {
    if (!(path in files)) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
    return files[path];
  };
}

function load(settings: Settings = {}, files: Record<string, string> = {}): PemHaConfig {
  return loadConfig(contextOf(settings), filesOf(files));
}

/** The ConfigError loadConfig throws for these settings; fails the test if it throws none. */
function configErrorOf(settings: Settings, files: Record<string, string> = {}): ConfigError {
  try {
    load(settings, files);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw new Error(`expected a ConfigError, got ${String(error)}`, { cause: error });
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(settings)}, but the config loaded`);
}

/** The message lines ("  - ..."), without the header. */
function problemLines(error: ConfigError): string[] {
  const [header, ...lines] = error.message.split('\n');
  expect(header).toBe(HEADER);
  return lines;
}

const IMPORTED_VPC: Settings = {
  vpcId: 'vpc-0123456789abcdef0',
  availabilityZones: 'eu-west-1a,eu-west-1b,eu-west-1c',
  vpcPrivateSubnetIds: 'subnet-0123456789abcdef0,subnet-0123456789abcdef1,subnet-0123456789abcdef2',
  vpcPrivateSubnetCidrs: '10.0.0.0/24,10.0.1.0/24,10.0.2.0/24',
};

/**
 * One bad value per setting and how the error must quote it: strings as from
 * `-c key=value` are quoted, JSON values from a config file are shown as JSON.
 */
const BAD_VALUES: Record<SettingName, { raw: unknown; given: string }> = {
  account: { raw: '12345', given: '"12345"' },
  region: { raw: 'Europe', given: '"Europe"' },
  stackName: { raw: '1st-stack', given: '"1st-stack"' },
  clusterName: { raw: 'PEM_HA', given: '"PEM_HA"' },
  vpcCidr: { raw: '10.40.0.0/24', given: '"10.40.0.0/24"' },
  natGateways: { raw: 0, given: '0' },
  availabilityZones: { raw: 'eu-west-1a,eu-west-1b', given: '"eu-west-1a,eu-west-1b"' },
  vpcId: { raw: 'vpc-xyz', given: '"vpc-xyz"' },
  vpcPrivateSubnetIds: {
    raw: ['subnet-1', 'subnet-2', 'subnet-3'],
    given: '["subnet-1","subnet-2","subnet-3"]',
  },
  vpcPrivateSubnetCidrs: {
    raw: '10.0.0.0/27,10.0.1.0/24,10.0.2.0/24',
    given: '"10.0.0.0/27,10.0.1.0/24,10.0.2.0/24"',
  },
  etcdNodeCount: { raw: '4', given: '"4"' },
  etcdInstanceType: { raw: 'T3.small', given: '"T3.small"' },
  backendNodeCount: { raw: 10, given: '10' },
  backendInstanceType: { raw: 'm6i', given: '"m6i"' },
  dataVolumeSizeGiB: { raw: '10.5', given: '"10.5"' },
  postgresMajorVersion: { raw: 13, given: '13' },
  postgresPackageSource: { raw: 'yum', given: '"yum"' },
  amiFamily: { raw: 'ubuntu-22.04', given: '"ubuntu-22.04"' },
  amiId: { raw: 'ami-123', given: '"ami-123"' },
  webNodeCount: { raw: 0, given: '0' },
  webInstanceType: { raw: '', given: '""' },
  webInternetFacing: { raw: 'yes', given: '"yes"' },
  webCertificateArn: {
    raw: 'arn:aws:iam::123456789012:server-certificate/web',
    given: '"arn:aws:iam::123456789012:server-certificate/web"',
  },
  databaseClientCidrs: { raw: '0.0.0.0/0', given: '"0.0.0.0/0"' },
  webClientCidrs: { raw: ['10.0.0.0/7'], given: '["10.0.0.0/7"]' },
  patroniTtl: { raw: 5, given: '5' },
  patroniLoopWait: { raw: '0', given: '"0"' },
  patroniRetryTimeout: { raw: 2, given: '2' },
  patroniFailoverProfile: { raw: 'quick', given: '"quick"' },
  synchronousMode: { raw: 'TRUE', given: '"TRUE"' },
  maximumLagOnFailoverBytes: { raw: -1, given: '-1' },
  postgresqlParameters: { raw: '[1]', given: '"[1]"' },
  healthCheckIntervalSeconds: { raw: '4', given: '"4"' },
  healthCheckHealthyThreshold: { raw: 1, given: '1' },
  healthCheckUnhealthyThreshold: { raw: 11, given: '11' },
  replicaMaxLagBytes: { raw: 'lots', given: '"lots"' },
  pemEnabled: { raw: 'no', given: '"no"' },
  edbRepoTokenSecretName: { raw: 'edb repo token', given: '"edb repo token"' },
  certificateValidityDays: { raw: 1000, given: '1000' },
  certificateRenewBeforeDays: { raw: 0, given: '0' },
  certificateExpiryAlarmDays: { raw: 0, given: '0' },
  certificateRotationSchedule: { raw: 'daily', given: '"daily"' },
  archiveTimeoutSeconds: { raw: 0, given: '0' },
  backupRetentionDays: { raw: '35d', given: '"35d"' },
  backupFullSchedule: { raw: 'sunday', given: '"sunday"' },
  backupDiffSchedule: { raw: 'cron(daily)', given: '"cron(daily)"' },
  archiveAgeAlarmSeconds: { raw: 10, given: '10' },
  backupAgeAlarmHours: { raw: 1.5, given: '1.5' },
  alarmEmail: { raw: 'oncall', given: '"oncall"' },
  alarmTopicArn: {
    raw: 'arn:aws:sqs:eu-west-1:123456789012:q',
    given: '"arn:aws:sqs:eu-west-1:123456789012:q"',
  },
  secretsBreakGlassRoleArn: {
    raw: 'arn:aws:iam::123456789012:user/admin',
    given: '"arn:aws:iam::123456789012:user/admin"',
  },
  replicaReplayDelayAlarmSeconds: { raw: 5, given: '5' },
  longTransactionAlarmSeconds: { raw: '2m', given: '"2m"' },
  xidAgeAlarm: { raw: 3000000000, given: '3000000000' },
  connectionsAlarmPercent: { raw: 101, given: '101' },
  dataVolumeFreeAlarmPercent: { raw: 0, given: '0' },
  pendingRestartAlarmHours: { raw: 169, given: '169' },
};

describe('loadConfig', () => {
  describe('defaults', () => {
    it('gives the documented topology when nothing is set', () => {
      // Given no context and no config file
      // When the config is loaded
      const config = loadConfig(() => undefined);
      // Then every setting has its default
      expect(config).toEqual({
        stackName: 'PemHa',
        clusterName: 'pem-ha',
        network: { kind: 'new', cidr: '10.40.0.0/16', natGateways: 1 },
        amiFamily: 'ubuntu-24.04',
        etcd: { nodeCount: 3, instanceType: 't3.small' },
        backend: {
          nodeCount: 3,
          instanceType: 'm6i.large',
          dataVolumeSizeGiB: 100,
          postgresMajorVersion: 17,
          packageSource: 'pgdg',
          clientCidrs: [],
        },
        patroni: {
          ttl: 30,
          loopWait: 10,
          retryTimeout: 10,
          synchronousMode: true,
          maximumLagOnFailoverBytes: 1048576,
        },
        postgresqlParameters: {},
        healthCheck: {
          intervalSeconds: 5,
          healthyThreshold: 2,
          unhealthyThreshold: 2,
          replicaMaxLagBytes: 16777216,
        },
        certificates: {
          validityDays: 90,
          renewBeforeDays: 30,
          expiryAlarmDays: 21,
          rotationSchedule: 'cron(0 12 * * ? *)',
        },
        backup: {
          archiveTimeoutSeconds: 60,
          retentionDays: 35,
          fullSchedule: 'cron(0 1 ? * SUN *)',
          diffSchedule: 'cron(0 1 ? * MON-SAT *)',
          archiveAgeAlarmSeconds: 300,
          ageAlarmHours: 30,
        },
        alarms: {
          replayDelaySeconds: 60,
          longTransactionSeconds: 120,
          xidAge: 1000000000,
          connectionsPercent: 80,
          dataVolumeFreePercent: 15,
          pendingRestartHours: 24,
        },
        pem: {
          edbRepoTokenSecretName: 'pem-ha/edb-repo-token',
          web: { nodeCount: 2, instanceType: 't3.medium', internetFacing: false, clientCidrs: [] },
        },
      });
      expect(config.account).toBeUndefined();
      expect(config.region).toBeUndefined();
      expect(config.amiId).toBeUndefined();
      expect(config.network.availabilityZones).toBeUndefined();
      expect(config.pem?.web.certificateArn).toBeUndefined();
    });

    it.each(Object.keys(SETTINGS) as SettingName[])(
      'the default of %s is accepted by its own parser',
      (name) => {
        // Given a setting with a default
        const setting = SETTINGS[name];
        // When the default is parsed as if it had been given
        // Then it is accepted unchanged (or the setting has no default)
        if (setting.defaultValue !== undefined) {
          expect(setting.parse(setting.defaultValue as never)).toEqual(setting.defaultValue);
        }
        expect(setting.description).not.toBe('');
        expect(setting.allowed).not.toBe('');
      },
    );

    it('treats null context values as not set', () => {
      // Given a context that returns null (as cdk.json can)
      // When the config is loaded
      const config = load({ etcdNodeCount: null });
      // Then the default applies
      expect(config.etcd.nodeCount).toBe(3);
    });
  });

  describe('alarm notifications', () => {
    it('refuses an e-mail address beside an existing topic', () => {
      // Given both an address to subscribe and an existing topic
      const error = configErrorOf({
        alarmEmail: 'oncall@example.com',
        alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:oncall',
      });
      // Then the address is refused, naming both values
      expect(error.problems).toEqual([
        'alarmEmail: cannot be given with alarmTopicArn (alarms go to that existing topic: subscribe the address there); got alarmEmail "oncall@example.com" and alarmTopicArn "arn:aws:sns:eu-west-1:123456789012:oncall"',
      ]);
    });

    it('takes either one alone, and neither by default', () => {
      expect(load({ alarmEmail: 'oncall@example.com' }).alarms.email).toBe('oncall@example.com');
      expect(load({}).alarms).toMatchObject({ email: undefined, topicArn: undefined });
    });
  });

  describe('certificate timings', () => {
    it('refuses a renewal threshold that is not below the validity', () => {
      // Given certificates valid 30 days renewed at 30 days left
      const error = configErrorOf({
        certificateValidityDays: 30,
        certificateRenewBeforeDays: 30,
        certificateExpiryAlarmDays: 7,
      });
      // Then the renewal threshold is named with the validity and the given value
      expect(error.problems).toEqual([
        'certificateRenewBeforeDays: must be less than certificateValidityDays (30), or every run renews everything; got 30',
      ]);
    });

    it('refuses an alarm threshold that is not below the renewal threshold', () => {
      const error = configErrorOf({ certificateExpiryAlarmDays: 30 });
      expect(error.problems).toEqual([
        'certificateExpiryAlarmDays: must be less than certificateRenewBeforeDays (30), so a renewal is due before the alarm; got 30',
      ]);
    });

    it.each(['rate(12 hours)', 'cron(0 3 * * ? *)'])('accepts the schedule %s', (schedule) => {
      expect(load({ certificateRotationSchedule: schedule }).certificates.rotationSchedule).toBe(
        schedule,
      );
    });
  });

  describe('one bad value per setting', () => {
    it('has a bad-value case for every setting in SETTINGS and no other', () => {
      // Given the schema and the table of bad values
      // When their keys are compared
      // Then each setting is covered exactly once
      expect(Object.keys(BAD_VALUES).sort()).toEqual(Object.keys(SETTINGS).sort());
    });

    it.each(Object.keys(SETTINGS) as SettingName[])(
      'refuses a bad %s, naming the setting, what is allowed and what was given',
      (name) => {
        const bad = BAD_VALUES[name];
        // Given a setting in SETTINGS; without a bad value this fails loudly
        expect(bad).toBeDefined();
        // When it is set to a bad value
        const error = configErrorOf({ [name]: bad.raw });
        // Then the only problem reported is that setting's
        expect(error.problems).toEqual([
          `${name}: must be ${SETTINGS[name].allowed}; got ${bad.given}`,
        ]);
        expect(error.message).toBe(
          `${HEADER}\n  - ${name}: must be ${SETTINGS[name].allowed}; got ${bad.given}`,
        );
      },
    );

    it.each([
      ['etcdNodeCount', '4', 'an odd integer from 3 to 7', '"4"'],
      ['etcdNodeCount', 9, 'an odd integer from 3 to 7', '9'],
      ['etcdNodeCount', 'three', 'an odd integer from 3 to 7', '"three"'],
      ['backendNodeCount', 1, 'an integer from 2 to 9', '1'],
      ['dataVolumeSizeGiB', 10, 'an integer from 20 to 16384 GiB', '10'],
      ['patroniTtl', 4000, 'an integer from 20 to 3600 s', '4000'],
      ['patroniTtl', 10, 'an integer from 20 to 3600 s', '10'],
      ['postgresMajorVersion', '19', 'one of 14, 15, 16, 17, 18', '"19"'],
      ['amiFamily', 'al2023', 'one of ubuntu-24.04, debian-12, debian-13', '"al2023"'],
      ['pemEnabled', 'yes', 'true or false', '"yes"'],
      ['natGateways', '4', 'an integer from 1 to 3', '"4"'],
      ['etcdNodeCount', '0x5', 'an odd integer from 3 to 7', '"0x5"'],
      ['backendNodeCount', '1e1', 'an integer from 2 to 9', '"1e1"'],
    ])('spells out the allowed values: %s = %p', (name, raw, allowed, given) => {
      // Given a value outside the allowed ones
      // When the config is loaded
      const error = configErrorOf({ [name]: raw });
      // Then the message names the setting, the allowed values in words and the given value
      expect(error.message).toBe(`${HEADER}\n  - ${name}: must be ${allowed}; got ${given}`);
    });

    it.each([
      ['postgresMajorVersion', [17], '[17]'],
      ['amiFamily', ['debian-12'], '["debian-12"]'],
      ['postgresMajorVersion', true, 'true'],
    ])('refuses a non-scalar or mistyped %s = %p for a one-of setting', (name, raw, given) => {
      // Given a config file value of the wrong JSON type whose text matches an allowed value
      // When the config is loaded
      const error = configErrorOf({ [name]: raw });
      // Then it is refused, not coerced
      expect(error.problems).toEqual([
        `${name}: must be ${SETTINGS[name as SettingName].allowed}; got ${given}`,
      ]);
    });
  });

  describe('client CIDRs', () => {
    const allowed =
      'IPv4 CIDRs with a prefix of /8 to /32 (0.0.0.0/0 and other open ranges are refused)';

    it.each([
      ['databaseClientCidrs', '0.0.0.0/0', '"0.0.0.0/0"'],
      ['databaseClientCidrs', '10.0.0.0/7', '"10.0.0.0/7"'],
      ['webClientCidrs', '0.0.0.0/0', '"0.0.0.0/0"'],
      ['webClientCidrs', '10.0.0.0/7', '"10.0.0.0/7"'],
      ['databaseClientCidrs', '10.0.0.0/8,0.0.0.0/0', '"10.0.0.0/8,0.0.0.0/0"'],
    ])('refuses the open range %s = %s', (name, raw, given) => {
      // Given a client range wider than /8
      // When the config is loaded
      const error = configErrorOf({ [name]: raw });
      // Then it is refused with the allowed prefixes spelled out
      expect(error.message).toBe(`${HEADER}\n  - ${name}: must be ${allowed}; got ${given}`);
    });

    it.each([
      ['10.0.0.1/8', '"10.0.0.1/8"'],
      ['192.168.1.10/24', '"192.168.1.10/24"'],
      ['192.168.1.0/23', '"192.168.1.0/23"'],
    ])('refuses the CIDR %s whose host bits are set', (raw, given) => {
      // Given a CIDR with host bits set (a typo for another network)
      // When the config is loaded
      const error = configErrorOf({ databaseClientCidrs: raw });
      // Then it is refused
      expect(error.problems).toEqual([`databaseClientCidrs: must be ${allowed}; got ${given}`]);
    });

    it('refuses a CIDR with host bits set in vpcCidr too', () => {
      // Given a VPC CIDR with host bits set
      // When the config is loaded
      const error = configErrorOf({ vpcCidr: '10.40.0.1/16' });
      // Then it is refused
      expect(error.problems).toEqual([
        'vpcCidr: must be an IPv4 network CIDR with a prefix of /16 to /21; got "10.40.0.1/16"',
      ]);
    });

    it('accepts /8 and single-host /32 ranges', () => {
      // Given the widest and narrowest allowed ranges
      // When the config is loaded
      const config = load({ databaseClientCidrs: '10.0.0.0/8,203.0.113.7/32' });
      // Then both are kept
      expect(config.backend.clientCidrs).toEqual(['10.0.0.0/8', '203.0.113.7/32']);
    });
  });

  describe('string inputs as from `-c key=value`', () => {
    it('parses integers, enums and booleans given as text', () => {
      // Given every value as the CLI passes it: a string
      // When the config is loaded
      const config = load({
        backendNodeCount: '4',
        etcdNodeCount: '5',
        postgresMajorVersion: '16',
        webInternetFacing: 'true',
        synchronousMode: 'false',
        patroniTtl: '40',
      });
      // Then each is converted to its type
      expect(config.backend.nodeCount).toBe(4);
      expect(config.etcd.nodeCount).toBe(5);
      expect(config.backend.postgresMajorVersion).toBe(16);
      expect(config.pem?.web.internetFacing).toBe(true);
      expect(config.patroni.synchronousMode).toBe(false);
      expect(config.patroni.ttl).toBe(40);
    });

    it.each([
      ['comma-separated text', '10.0.0.0/8,192.168.0.0/16'],
      ['comma-separated text with spaces', ' 10.0.0.0/8 , 192.168.0.0/16 '],
      ['JSON array text', '["10.0.0.0/8", "192.168.0.0/16"]'],
      ['a JSON array', ['10.0.0.0/8', '192.168.0.0/16']],
    ])('parses a list given as %s', (_form, raw) => {
      // Given a list of client CIDRs in one of the accepted forms
      // When the config is loaded
      const config = load({ webClientCidrs: raw });
      // Then it becomes the same list
      expect(config.pem?.web.clientCidrs).toEqual(['10.0.0.0/8', '192.168.0.0/16']);
    });

    it('parses an empty string as an empty list', () => {
      // Given `-c databaseClientCidrs=`
      // When the config is loaded
      const config = load({ databaseClientCidrs: '' });
      // Then there are no client CIDRs
      expect(config.backend.clientCidrs).toEqual([]);
    });

    it.each([
      ['[not json', '"[not json"'],
      ['[1, 2]', '"[1, 2]"'],
      ['10.0.0.0/8,', '"10.0.0.0/8,"'],
    ])('refuses the malformed list text %s', (raw, given) => {
      // Given list text that is neither valid JSON strings nor clean comma-separated items
      // When the config is loaded
      const error = configErrorOf({ databaseClientCidrs: raw });
      // Then it is refused, quoting what was given
      expect(error.problems).toEqual([
        `databaseClientCidrs: must be ${SETTINGS.databaseClientCidrs.allowed}; got ${given}`,
      ]);
    });
  });

  describe('Patroni timing', () => {
    it("uses Patroni's defaults with the standard profile", () => {
      // Given no timing setting
      // When the config is loaded
      const config = load({});
      // Then ttl 30 / loop_wait 10 / retry_timeout 10
      expect(config.patroni).toMatchObject({ ttl: 30, loopWait: 10, retryTimeout: 10 });
    });

    it('uses ttl 20 / loop 2 / retry 9 with the fast profile, which Patroni 4 keeps as given', () => {
      // Given the fast profile
      // When the config is loaded
      const config = load({ patroniFailoverProfile: 'fast' });
      // Then the timing is at Patroni's enforced floor and fits its loop rule (2 + 2 × 9 = 20)
      expect(config.patroni).toMatchObject({ ttl: 20, loopWait: 2, retryTimeout: 9 });
    });

    it('lets a single setting override the profile', () => {
      // Given the fast profile with a longer ttl
      // When the config is loaded
      const config = load({ patroniFailoverProfile: 'fast', patroniTtl: '25' });
      // Then only the ttl changes
      expect(config.patroni).toMatchObject({ ttl: 25, loopWait: 2, retryTimeout: 9 });
    });

    it('refuses loopWait + 2 × retryTimeout above ttl', () => {
      // Given ttl 30 with loop 10 and retry 11 (10 + 22 = 32)
      // When the config is loaded
      const error = configErrorOf({ patroniRetryTimeout: 11 });
      // Then Patroni's rule is named with the numbers given
      expect(error.problems).toEqual([
        'patroniTtl: must be at least patroniLoopWait + 2 × patroniRetryTimeout, or Patroni lowers them itself; got ttl 30 < 10 + 2 × 11 = 32',
      ]);
    });

    it('refuses a profile value changed so that the loop no longer fits', () => {
      // Given the fast profile (ttl 20) with loop_wait 5 (5 + 2 × 9 = 23)
      // When the config is loaded
      const error = configErrorOf({ patroniFailoverProfile: 'fast', patroniLoopWait: 5 });
      // Then the rule names the effective values
      expect(error.problems).toEqual([
        'patroniTtl: must be at least patroniLoopWait + 2 × patroniRetryTimeout, or Patroni lowers them itself; got ttl 20 < 5 + 2 × 9 = 23',
      ]);
    });

    it('accepts loopWait + 2 × retryTimeout equal to ttl', () => {
      // Given ttl 20 = 4 + 2 × 8
      // When the config is loaded
      const config = load({ patroniTtl: 20, patroniLoopWait: 4, patroniRetryTimeout: 8 });
      // Then it is valid
      expect(config.patroni).toMatchObject({ ttl: 20, loopWait: 4, retryTimeout: 8 });
    });
  });

  describe('network', () => {
    it('imports a VPC given with its AZs, subnets and subnet CIDRs', () => {
      // Given a complete imported VPC
      // When the config is loaded
      const config = load(IMPORTED_VPC);
      // Then the network is imported with the lists in order
      expect(config.network).toEqual({
        kind: 'imported',
        vpcId: 'vpc-0123456789abcdef0',
        availabilityZones: ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'],
        privateSubnetIds: [
          'subnet-0123456789abcdef0',
          'subnet-0123456789abcdef1',
          'subnet-0123456789abcdef2',
        ],
        privateSubnetCidrs: ['10.0.0.0/24', '10.0.1.0/24', '10.0.2.0/24'],
      });
    });

    it.each([
      ['availabilityZones', 'exactly 3 distinct AZ names such as eu-west-1a'],
      ['vpcPrivateSubnetIds', 'exactly 3 subnet ids'],
      ['vpcPrivateSubnetCidrs', 'exactly 3 IPv4 CIDRs with a prefix of /16 to /26'],
    ])('requires %s with vpcId', (missing, allowed) => {
      // Given an imported VPC without one of its companion settings
      const settings = { ...IMPORTED_VPC, [missing]: undefined };
      // When the config is loaded
      const error = configErrorOf(settings);
      // Then the missing setting is named with what it must be
      expect(error.problems).toEqual([
        `${missing}: is required with vpcId (${allowed}); got nothing`,
      ]);
    });

    it('reports every missing companion of vpcId at once', () => {
      // Given only a vpcId
      // When the config is loaded
      const error = configErrorOf({ vpcId: 'vpc-0123456789abcdef0' });
      // Then all three are reported
      expect(problemLines(error)).toEqual([
        '  - availabilityZones: is required with vpcId (exactly 3 distinct AZ names such as eu-west-1a); got nothing',
        '  - vpcPrivateSubnetIds: is required with vpcId (exactly 3 subnet ids); got nothing',
        '  - vpcPrivateSubnetCidrs: is required with vpcId (exactly 3 IPv4 CIDRs with a prefix of /16 to /26); got nothing',
      ]);
    });

    it.each([
      [
        'vpcPrivateSubnetIds',
        IMPORTED_VPC.vpcPrivateSubnetIds,
        '["subnet-0123456789abcdef0","subnet-0123456789abcdef1","subnet-0123456789abcdef2"]',
      ],
      [
        'vpcPrivateSubnetCidrs',
        IMPORTED_VPC.vpcPrivateSubnetCidrs,
        '["10.0.0.0/24","10.0.1.0/24","10.0.2.0/24"]',
      ],
    ])('refuses %s without vpcId', (name, raw, given) => {
      // Given subnet settings but no vpcId (a new VPC)
      // When the config is loaded
      const error = configErrorOf({ [name]: raw });
      // Then they are refused, naming vpcId and the given value
      expect(error.problems).toEqual([
        `${name}: is only allowed together with vpcId; got ${given} without vpcId`,
      ]);
    });

    it('accepts availabilityZones without vpcId for a new VPC', () => {
      // Given AZs for a new VPC
      // When the config is loaded
      const config = load({ availabilityZones: '["eu-west-1a","eu-west-1b","eu-west-1c"]' });
      // Then the new VPC uses them
      expect(config.network).toEqual({
        kind: 'new',
        cidr: '10.40.0.0/16',
        natGateways: 1,
        availabilityZones: ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'],
      });
    });

    it('refuses repeated availability zones', () => {
      // Given the same AZ twice
      // When the config is loaded
      const error = configErrorOf({ availabilityZones: 'eu-west-1a,eu-west-1a,eu-west-1b' });
      // Then it is refused, quoting the zones
      expect(error.problems).toEqual([
        'availabilityZones: must be 3 distinct AZ names; got ["eu-west-1a","eu-west-1a","eu-west-1b"]',
      ]);
    });

    it('refuses availability zones outside the given region', () => {
      // Given region eu-west-1 and one AZ of eu-central-1
      // When the config is loaded
      const error = configErrorOf({
        region: 'eu-west-1',
        availabilityZones: 'eu-west-1a,eu-west-1b,eu-central-1c',
      });
      // Then the region is named with the zones given
      expect(error.problems).toEqual([
        'availabilityZones: must all be in region eu-west-1; got ["eu-west-1a","eu-west-1b","eu-central-1c"]',
      ]);
    });

    it('accepts availability zones in the given region', () => {
      // Given region and matching AZs
      // When the config is loaded
      const config = load({ ...IMPORTED_VPC, region: 'eu-west-1', account: '123456789012' });
      // Then both are kept
      expect(config.region).toBe('eu-west-1');
      expect(config.account).toBe('123456789012');
      expect(config.network.availabilityZones).toEqual(['eu-west-1a', 'eu-west-1b', 'eu-west-1c']);
    });

    it('refuses an internet-facing web ALB in an imported VPC when PEM is enabled', () => {
      // Given an imported VPC and webInternetFacing
      // When the config is loaded
      const error = configErrorOf({ ...IMPORTED_VPC, webInternetFacing: 'true' });
      // Then webInternetFacing is refused, with the reason and the value given
      expect(error.problems).toEqual([
        'webInternetFacing: must be false with an imported VPC (vpcId), whose public subnets pem-ha does not know; got true',
      ]);
    });

    it('ignores webInternetFacing in an imported VPC when PEM is disabled', () => {
      // Given the same settings without PEM (no web tier)
      // When the config is loaded
      const config = load({ ...IMPORTED_VPC, webInternetFacing: 'true', pemEnabled: 'false' });
      // Then there is nothing to refuse
      expect(config.pem).toBeUndefined();
      expect(config.network.kind).toBe('imported');
    });

    it('accepts an internet-facing web ALB in a new VPC', () => {
      // Given a new VPC and webInternetFacing
      // When the config is loaded
      const config = load({ webInternetFacing: true });
      // Then the ALB is internet-facing
      expect(config.pem?.web.internetFacing).toBe(true);
    });
  });

  describe('PostgreSQL parameters', () => {
    it('takes a JSON object from a config file or as text from the command line', () => {
      // Given parameters as JSON values and, on the command line, as text
      const fromFile = load({ postgresqlParameters: { max_connections: 300, jit: false } });
      const fromCli = load({
        postgresqlParameters:
          '{"log_min_duration_statement": "2s", "pg_stat_statements.max": 5000}',
      });
      // Then both arrive as name -> value
      expect(fromFile.postgresqlParameters).toEqual({ jit: false, max_connections: 300 });
      expect(fromCli.postgresqlParameters).toEqual({
        log_min_duration_statement: '2s',
        'pg_stat_statements.max': 5000,
      });
    });

    it('refuses a name PostgreSQL 17 does not have, as Patroni would drop it silently', () => {
      // Given a misspelt parameter and an extension's own one on major 17
      const error = configErrorOf({
        postgresqlParameters: { max_conections: 300, 'pg_stat_statements.max': 5000 },
      });
      // Then only the misspelt one is named
      expect(problemLines(error)).toEqual([
        '  - postgresqlParameters: must name PostgreSQL 17 parameters (Patroni drops unknown ones without a word); got max_conections',
      ]);
    });

    it.each([
      ['max_wal_size', '1GB', 'max_wal_size: pem-ha sizes it from dataVolumeSizeGiB'],
      ['archive_timeout', 30, 'archive_timeout: set archiveTimeoutSeconds instead'],
      [
        'synchronous_standby_names',
        '*',
        'synchronous_standby_names: Patroni manages it: set synchronousMode instead',
      ],
      ['port', 5433, 'port: Patroni sets it for each member'],
      [
        'recovery_target_time',
        'x',
        'recovery_target_time: the restore runbook sets recovery targets',
      ],
      ['max-connections', 1, '"max-connections" is not a parameter name'],
      [
        'work_mem',
        '64MB\nssl = off',
        'work_mem: its value must be a number, true/false or printable text',
      ],
    ])('refuses %s and says why', (name, value, reason) => {
      // Given a parameter pem-ha owns, a malformed name or a multi-line value
      const error = configErrorOf({ postgresqlParameters: { [name]: value } });
      // Then the error names the setting, the parameter and the reason
      const [line] = problemLines(error);
      expect(line).toContain(`- postgresqlParameters: ${reason}`);
      expect(line).toContain(SETTINGS.postgresqlParameters.allowed);
    });
  });

  describe('PEM', () => {
    it('gives no pem section when pemEnabled is false', () => {
      // Given pemEnabled=false with web settings that would otherwise apply
      // When the config is loaded
      const config = load({ pemEnabled: 'false', webNodeCount: 3 });
      // Then there is no web tier
      expect(config.pem).toBeUndefined();
      expect(config.backend.nodeCount).toBe(3);
    });

    it('still validates web settings when pemEnabled is false', () => {
      // Given pemEnabled=false and a bad web setting
      // When the config is loaded
      const error = configErrorOf({ pemEnabled: false, webNodeCount: 11 });
      // Then the mistake is still reported
      expect(error.problems).toEqual(['webNodeCount: must be an integer from 1 to 10; got 11']);
    });
  });

  describe('pinned AMI', () => {
    it('refuses one AMI for instance types of different architectures', () => {
      // Given a pinned AMI, x86_64 etcd nodes and Graviton (arm64) backend nodes
      // When the config is loaded
      const error = configErrorOf({
        amiId: 'ami-0123456789abcdef0',
        backendInstanceType: 'm7g.large',
      });
      // Then the problem names amiId and the clashing settings
      expect(error.problems).toEqual([
        'amiId: one AMI serves one architecture, so every instance type must be all x86_64 or all arm64 when it is set; got ami-0123456789abcdef0 with x86_64: etcdInstanceType=t3.small, webInstanceType=t3.medium; arm64: backendInstanceType=m7g.large',
      ]);
    });

    it('accepts one AMI when every tier shares its architecture', () => {
      // Given Graviton instance types everywhere
      const config = load({
        amiId: 'ami-0123456789abcdef0',
        etcdInstanceType: 't4g.small',
        backendInstanceType: 'm7g.large',
        webInstanceType: 't4g.medium',
      });
      // Then the AMI is kept
      expect(config.amiId).toBe('ami-0123456789abcdef0');
    });
  });

  describe('OS packages', () => {
    it("refuses the OS's own PostgreSQL when it is not the configured major", () => {
      // Given Ubuntu 24.04, whose own PostgreSQL is 16, and the default major 17
      const error = configErrorOf({ amiFamily: 'ubuntu-24.04', postgresPackageSource: 'os' });
      // Then the problem names the setting, what the OS gives and what was asked
      expect(error.problems).toEqual([
        'postgresPackageSource: os gives PostgreSQL 16 on ubuntu-24.04, so postgresMajorVersion must be 16 with it; got postgresMajorVersion 17',
      ]);
    });

    it.each([
      ['debian-13', '17'],
      ['ubuntu-24.04', '16'],
    ])("accepts the OS's own PostgreSQL on %s with major %s", (amiFamily, major) => {
      const config = load({ amiFamily, postgresPackageSource: 'os', postgresMajorVersion: major });
      expect(config.backend).toMatchObject({
        packageSource: 'os',
        postgresMajorVersion: Number(major),
      });
    });

    it("refuses Debian 12's own Patroni 3.0.2, naming both settings and the reason", () => {
      // Given Debian 12 with its own packages (PostgreSQL 15 matches, Patroni is 3.0.2)
      const error = configErrorOf({
        amiFamily: 'debian-12',
        postgresPackageSource: 'os',
        postgresMajorVersion: '15',
      });
      // Then it is refused before anything is synthesized
      expect(error.problems).toEqual([
        "postgresPackageSource: os on amiFamily debian-12 deploys Debian 12's Patroni 3.0.2, which can lose acknowledged writes when a cut-off leader returns after a failover (fixed in 3.0.3); use amiFamily debian-13 or postgresPackageSource pgdg; got postgresPackageSource os with amiFamily debian-12",
      ]);
    });

    it('accepts debian-12 with PGDG packages (a current Patroni)', () => {
      const config = load({ amiFamily: 'debian-12', postgresPackageSource: 'pgdg' });
      expect(config.amiFamily).toBe('debian-12');
    });

    it("lets only the rig's own context key synthesize Debian 12's Patroni", () => {
      // Given the rig-only key the Debian 12 upgrade suite passes
      const config = load({
        amiFamily: 'debian-12',
        postgresPackageSource: 'os',
        postgresMajorVersion: '15',
        [RIG_ONLY_ALLOW_PATRONI_302]: 'true',
      });
      // Then it synthesizes (the stack adds a warning)
      expect(config.backend.postgresMajorVersion).toBe(15);
    });
  });

  describe('several problems at once', () => {
    it('reports every bad value in one error, in schema order', () => {
      // Given three bad values
      // When the config is loaded
      const error = configErrorOf({
        webClientCidrs: '0.0.0.0/0',
        etcdNodeCount: '4',
        postgresMajorVersion: '12',
      });
      // Then all three are listed
      expect(error.message).toBe(
        [
          HEADER,
          '  - etcdNodeCount: must be an odd integer from 3 to 7; got "4"',
          '  - postgresMajorVersion: must be one of 14, 15, 16, 17, 18; got "12"',
          `  - webClientCidrs: must be ${SETTINGS.webClientCidrs.allowed}; got "0.0.0.0/0"`,
        ].join('\n'),
      );
    });

    it('reports every broken rule between settings in one error', () => {
      // Given a ttl too short for the loop and subnets without vpcId
      // When the config is loaded
      const error = configErrorOf({
        patroniTtl: '25',
        vpcPrivateSubnetIds: IMPORTED_VPC.vpcPrivateSubnetIds,
        region: 'us-east-1',
        availabilityZones: 'eu-west-1a,eu-west-1b,eu-west-1c',
      });
      // Then each rule is listed
      expect(problemLines(error)).toEqual([
        '  - patroniTtl: must be at least patroniLoopWait + 2 × patroniRetryTimeout, or Patroni lowers them itself; got ttl 25 < 10 + 2 × 10 = 30',
        '  - vpcPrivateSubnetIds: is only allowed together with vpcId; got ["subnet-0123456789abcdef0","subnet-0123456789abcdef1","subnet-0123456789abcdef2"] without vpcId',
        '  - availabilityZones: must all be in region us-east-1; got ["eu-west-1a","eu-west-1b","eu-west-1c"]',
      ]);
    });

    it('reports config file problems together with bad values', () => {
      // Given a config file with an unknown key and a bad value, and a bad context value
      const files = { 'pem.json': JSON.stringify({ etcdNodes: 5, backendNodeCount: 1 }) };
      // When the config is loaded
      const error = configErrorOf({ configFile: 'pem.json', webNodeCount: '0' }, files);
      // Then all three problems are listed
      const lines = problemLines(error);
      expect(lines).toHaveLength(3);
      expect(lines[0]).toMatch(
        /^ {2}- configFile: pem\.json has unknown setting "etcdNodes"; known settings: account, /,
      );
      expect(lines.slice(1)).toEqual([
        '  - backendNodeCount: must be an integer from 2 to 9; got 1',
        '  - webNodeCount: must be an integer from 1 to 10; got "0"',
      ]);
    });
  });

  describe('config file', () => {
    const file = JSON.stringify({
      etcdNodeCount: 5,
      backendNodeCount: 5,
      databaseClientCidrs: ['10.1.0.0/16'],
      synchronousMode: false,
    });

    it('reads settings from the file named by configFile', () => {
      // Given a config file and no other settings
      // When the config is loaded with -c configFile=pem.json
      const config = load({ configFile: 'pem.json' }, { 'pem.json': file });
      // Then the file's values apply and the rest keep their defaults
      expect(config.etcd.nodeCount).toBe(5);
      expect(config.backend.nodeCount).toBe(5);
      expect(config.backend.clientCidrs).toEqual(['10.1.0.0/16']);
      expect(config.patroni.synchronousMode).toBe(false);
      expect(config.pem?.web.nodeCount).toBe(2);
    });

    it('lets context values override the file', () => {
      // Given the file and context values for some of the same settings
      // When the config is loaded
      const config = load(
        { configFile: 'pem.json', etcdNodeCount: '7', synchronousMode: 'true' },
        { 'pem.json': file },
      );
      // Then context wins where given, the file elsewhere
      expect(config.etcd.nodeCount).toBe(7);
      expect(config.patroni.synchronousMode).toBe(true);
      expect(config.backend.nodeCount).toBe(5);
    });

    it('reports a bad value from the file as JSON', () => {
      // Given a file with an even etcd count
      // When the config is loaded
      const error = configErrorOf(
        { configFile: 'pem.json' },
        { 'pem.json': '{"etcdNodeCount": 4}' },
      );
      // Then the JSON number is quoted as given
      expect(error.problems).toEqual(['etcdNodeCount: must be an odd integer from 3 to 7; got 4']);
    });

    it('refuses unknown keys in the file', () => {
      // Given a file with a misspelt setting
      // When the config is loaded
      const error = configErrorOf(
        { configFile: 'pem.json' },
        { 'pem.json': '{"etcdNodeCount": 5, "etcdNodes": 5}' },
      );
      // Then the key is named with the known settings
      expect(error.problems).toEqual([
        `configFile: pem.json has unknown setting "etcdNodes"; known settings: ${Object.keys(SETTINGS).join(', ')}`,
      ]);
    });

    it.each([
      ['missing.json', {}, /^configFile: cannot read missing\.json as JSON \(ENOENT/],
      [
        'bad.json',
        { 'bad.json': '{etcdNodeCount: 5' },
        /^configFile: cannot read bad\.json as JSON \(/,
      ],
      [
        'list.json',
        { 'list.json': '[1, 2]' },
        /^configFile: list\.json must hold a JSON object of settings$/,
      ],
    ])('refuses the unusable config file %s', (path, files, expected) => {
      // Given a config file that is missing, not JSON or not an object
      // When the config is loaded
      const error = configErrorOf({ configFile: path }, files as Record<string, string>);
      // Then the file is named with the reason
      expect(error.problems).toHaveLength(1);
      expect(error.problems[0]).toMatch(expected);
    });

    it('refuses an empty configFile', () => {
      // Given -c configFile=
      // When the config is loaded
      const error = configErrorOf({ configFile: '' });
      // Then it asks for a path
      expect(error.problems).toEqual(['configFile: must be a path to a JSON file; got ""']);
    });
  });
});
