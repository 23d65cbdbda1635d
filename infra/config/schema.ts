import { boolean, integer, list, oneOf, Setting, text } from './setting';
import { parseCidr } from './ipv4';
import { postgresqlParametersSetting } from './postgresql-parameters';

const CLIENT_CIDR_ALLOWED =
  'IPv4 CIDRs with a prefix of /8 to /32 (0.0.0.0/0 and other open ranges are refused)';

function isClientCidr(value: string): boolean {
  const cidr = parseCidr(value);
  return cidr !== undefined && cidr.prefix >= 8;
}

const INSTANCE_TYPE = /^[a-z][a-z0-9-]*\.[a-z0-9]+$/;

/** An EventBridge schedule expression setting. */
function schedule(description: string, defaultValue: string) {
  return text({
    description,
    defaultValue,
    pattern: /^(rate\(([1-9]\d{0,3}) (minute|minutes|hour|hours|day|days)\)|cron\([^()]{9,200}\))$/,
    allowed: 'an EventBridge schedule such as rate(1 day), rate(12 hours) or cron(0 3 * * ? *)',
  });
}

/**
 * Every user-facing setting. Keys are the names given in cdk.json context,
 * in a config file (`-c configFile=path.json`) or on the command line
 * (`-c key=value`). The README's configuration table is generated from this.
 */
export const SETTINGS = {
  account: text({
    description: 'AWS account to deploy to. Omit for an environment-agnostic template.',
    pattern: /^\d{12}$/,
    allowed: '12 digits',
  }),
  region: text({
    description: 'AWS region to deploy to. Omit for an environment-agnostic template.',
    pattern: /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/,
    allowed: 'an AWS region name such as eu-west-1',
  }),
  stackName: text({
    description: 'CloudFormation stack name.',
    defaultValue: 'PemHa',
    pattern: /^[A-Za-z][A-Za-z0-9-]{0,127}$/,
    allowed: 'letters, digits and hyphens, starting with a letter, at most 128 characters',
  }),
  clusterName: text({
    description: 'Patroni scope and name prefix of every node and secret.',
    defaultValue: 'pem-ha',
    pattern: /^[a-z][a-z0-9-]{1,30}[a-z0-9]$/,
    allowed: 'lowercase letters, digits and hyphens, 3 to 32 characters',
  }),
  vpcCidr: text({
    description: 'CIDR of the new VPC (ignored when vpcId is set).',
    defaultValue: '10.40.0.0/16',
    pattern: (value) => {
      const cidr = parseCidr(value);
      return cidr !== undefined && cidr.prefix >= 16 && cidr.prefix <= 21;
    },
    allowed: 'an IPv4 network CIDR with a prefix of /16 to /21',
  }),
  natGateways: integer({
    description:
      'NAT gateways of the new VPC; 3 keeps package installs working through an AZ outage.',
    defaultValue: 1,
    min: 1,
    max: 3,
  }),
  availabilityZones: list({
    description:
      "The three AZs to use. Default: the region's first three, resolved at deploy time (Fn::GetAZs). Required with vpcId.",
    item: (value) => /^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$/.test(value),
    allowed: 'exactly 3 distinct AZ names such as eu-west-1a',
    minItems: 3,
    maxItems: 3,
  }),
  vpcId: text({
    description:
      'Import this VPC instead of creating one (needs availabilityZones, vpcPrivateSubnetIds, vpcPrivateSubnetCidrs).',
    pattern: /^vpc-[0-9a-f]{8,17}$/,
    allowed: 'a VPC id such as vpc-0123456789abcdef0',
  }),
  vpcPrivateSubnetIds: list({
    description: 'Private subnets of the imported VPC, one per AZ, in availabilityZones order.',
    item: (value) => /^subnet-[0-9a-f]{8,17}$/.test(value),
    allowed: 'exactly 3 subnet ids',
    minItems: 3,
    maxItems: 3,
  }),
  vpcPrivateSubnetCidrs: list({
    description:
      'CIDRs of vpcPrivateSubnetIds, same order; fixed node addresses are placed in them.',
    item: (value) => {
      const cidr = parseCidr(value);
      return cidr !== undefined && cidr.prefix >= 16 && cidr.prefix <= 26;
    },
    allowed: 'exactly 3 IPv4 CIDRs with a prefix of /16 to /26',
    minItems: 3,
    maxItems: 3,
  }),
  etcdNodeCount: integer({
    description: 'etcd members (DCS quorum); spread over the three AZs.',
    defaultValue: 3,
    min: 3,
    max: 7,
    odd: true,
  }),
  etcdInstanceType: text({
    description: 'EC2 instance type of the etcd members.',
    defaultValue: 't3.small',
    pattern: INSTANCE_TYPE,
    allowed: 'an EC2 instance type such as t3.small',
  }),
  backendNodeCount: integer({
    description: 'Patroni/PostgreSQL backend nodes; spread over the three AZs.',
    defaultValue: 3,
    min: 2,
    max: 9,
  }),
  backendInstanceType: text({
    description: 'EC2 instance type of the backend nodes.',
    defaultValue: 'm6i.large',
    pattern: INSTANCE_TYPE,
    allowed: 'an EC2 instance type such as m6i.large',
  }),
  dataVolumeSizeGiB: integer({
    description: "Size of each backend node's encrypted gp3 data volume.",
    defaultValue: 100,
    min: 20,
    max: 16384,
    unit: 'GiB',
  }),
  postgresMajorVersion: oneOf({
    description: 'PostgreSQL major version of the PEM backend (PGDG packages).',
    defaultValue: 17,
    values: [14, 15, 16, 17, 18],
  }),
  postgresPackageSource: oneOf({
    description:
      "Where PostgreSQL and Patroni come from: the PGDG apt repository, or the operating system's own packages (PostgreSQL 17 and Patroni 4.0 on debian-13, 16 and 3.2 on ubuntu-24.04; debian-12's Patroni 3.0.2 is refused). The local rig uses os on debian-13.",
    defaultValue: 'pgdg',
    values: ['pgdg', 'os'],
  }),
  amiFamily: oneOf({
    description:
      "Operating system of every node; its newest AMI comes from the vendor's public SSM parameter (see amiId for when it is looked up).",
    defaultValue: 'ubuntu-24.04',
    values: ['ubuntu-24.04', 'debian-12', 'debian-13'],
  }),
  amiId: text({
    description:
      'Pin every node to this AMI (same architecture as every instance type). Default: the latest image of amiFamily; with account and region set it is looked up once and kept in cdk.context.json, without them it is re-resolved on every deploy, so a newer image would replace every node: pin it, or set account and region, for production.',
    pattern: /^ami-[0-9a-f]{8,17}$/,
    allowed: 'an AMI id such as ami-0123456789abcdef0',
  }),
  webNodeCount: integer({
    description: 'PEM web application instances behind the ALB.',
    defaultValue: 2,
    min: 1,
    max: 10,
  }),
  webInstanceType: text({
    description: 'EC2 instance type of the web tier.',
    defaultValue: 't3.medium',
    pattern: INSTANCE_TYPE,
    allowed: 'an EC2 instance type such as t3.medium',
  }),
  webInternetFacing: boolean({
    description: 'Make the web ALB internet-facing (needs public subnets; the new VPC has them).',
    defaultValue: false,
  }),
  webCertificateArn: text({
    description:
      "ACM certificate for the web ALB's HTTPS listener. Default: a self-signed certificate generated at deploy.",
    pattern: /^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[0-9a-f-]{36}$/,
    allowed: 'an ACM certificate ARN',
  }),
  databaseClientCidrs: list({
    description:
      'Networks allowed to reach the database endpoints (5432, 5433) besides the web tier.',
    defaultValue: [],
    item: isClientCidr,
    allowed: CLIENT_CIDR_ALLOWED,
    maxItems: 50,
  }),
  webClientCidrs: list({
    description: 'Networks allowed to reach the PEM web UI (HTTPS 443 on the ALB).',
    defaultValue: [],
    item: isClientCidr,
    allowed: CLIENT_CIDR_ALLOWED,
    maxItems: 50,
  }),
  patroniFailoverProfile: oneOf({
    description:
      "Patroni timing preset. standard: ttl 30 / loop_wait 10 / retry_timeout 10 (Patroni's defaults). fast: ttl 20 / loop_wait 2 / retry_timeout 9 (ttl at Patroni's enforced minimum; a crashed primary is replaced within about ttl + loop_wait). patroniTtl, patroniLoopWait and patroniRetryTimeout override single values.",
    defaultValue: 'standard',
    values: ['standard', 'fast'],
  }),
  patroniTtl: integer({
    description:
      'Patroni `ttl`: seconds before a lost leader lock starts a failover. Patroni 3.1+ raises anything below 20 to 20, so it is refused here.',
    defaultText: 'from patroniFailoverProfile (30 or 20)',
    min: 20,
    max: 3600,
    unit: 's',
  }),
  patroniLoopWait: integer({
    description:
      'Patroni `loop_wait`: seconds between HA loop cycles; with 2 × patroniRetryTimeout at most patroniTtl.',
    defaultText: 'from patroniFailoverProfile (10 or 2)',
    min: 1,
    max: 3600,
    unit: 's',
  }),
  patroniRetryTimeout: integer({
    description:
      'Patroni `retry_timeout`: seconds DCS and PostgreSQL operations are retried; patroniLoopWait + 2 × this must not exceed patroniTtl.',
    defaultText: 'from patroniFailoverProfile (10 or 9)',
    min: 3,
    max: 3600,
    unit: 's',
  }),
  synchronousMode: boolean({
    description: 'Patroni synchronous_mode: acknowledged commits survive a failover.',
    defaultValue: true,
  }),
  maximumLagOnFailoverBytes: integer({
    description: 'Patroni `maximum_lag_on_failover`: a replica further behind is never promoted.',
    defaultValue: 1048576,
    min: 0,
    max: 1099511627776,
    unit: 'bytes',
  }),
  postgresqlParameters: postgresqlParametersSetting(
    "PostgreSQL parameters for every member, kept in Patroni's dynamic configuration. A deploy that changes them applies them to the running cluster: reload-only ones at once; ones that need a restart (synth lists them) by a rolling restart of one node at a time with a single switchover, never a restart of the primary in place.",
  ),
  healthCheckIntervalSeconds: integer({
    description: 'NLB health-check interval for both target groups.',
    defaultValue: 5,
    min: 5,
    max: 300,
    unit: 's',
  }),
  healthCheckHealthyThreshold: integer({
    description: 'Consecutive passing checks before a target receives traffic.',
    defaultValue: 2,
    min: 2,
    max: 10,
  }),
  healthCheckUnhealthyThreshold: integer({
    description: 'Consecutive failing checks before a target stops receiving traffic.',
    defaultValue: 2,
    min: 2,
    max: 10,
  }),
  replicaMaxLagBytes: integer({
    description:
      'Read endpoint (5433) sends clients only to replicas at most this far behind (`GET /replica?lag=`).',
    defaultValue: 16777216,
    min: 0,
    max: 1099511627776,
    unit: 'bytes',
  }),
  certificateValidityDays: integer({
    description: 'Lifetime of every node TLS certificate the cluster CA issues.',
    defaultValue: 90,
    min: 2,
    max: 825,
    unit: 'days',
  }),
  certificateRenewBeforeDays: integer({
    description:
      'Rotation renews a certificate with fewer days left than this (less than certificateValidityDays).',
    defaultValue: 30,
    min: 1,
    max: 824,
    unit: 'days',
  }),
  certificateExpiryAlarmDays: integer({
    description:
      'The expiry alarm fires when any certificate has fewer days left (less than certificateRenewBeforeDays).',
    defaultValue: 21,
    min: 1,
    max: 823,
    unit: 'days',
  }),
  certificateRotationSchedule: schedule(
    "When certificate rotation runs (UTC): an EventBridge rate or cron expression. Keep it apart from the backup schedules: a runbook that starts while another holds the cluster's runbook lock ends at once (RunbookAlreadyRunningError) and raises its failure alarm.",
    'cron(0 12 * * ? *)',
  ),
  archiveTimeoutSeconds: integer({
    description:
      'PostgreSQL `archive_timeout`: a WAL segment is closed and archived to the backup repository at least this often, so it bounds the data a point-in-time restore can lose (the RPO goal).',
    defaultValue: 60,
    min: 10,
    max: 3600,
    unit: 's',
  }),
  backupRetentionDays: integer({
    description:
      'Days of point-in-time recovery the backup repository keeps (pgBackRest time-based retention of full backups); deleted repository objects stay recoverable as old S3 versions as long.',
    defaultValue: 35,
    min: 1,
    max: 3650,
    unit: 'days',
  }),
  backupFullSchedule: schedule(
    'When the backup runbook takes a full backup (UTC): an EventBridge rate or cron expression. Keep it apart from backupDiffSchedule: a backup that starts while another runs fails, and the backup failure alarm says so.',
    'cron(0 1 ? * SUN *)',
  ),
  backupDiffSchedule: schedule(
    'When the backup runbook takes a differential backup (changes since the last full, UTC): an EventBridge rate or cron expression.',
    'cron(0 1 ? * MON-SAT *)',
  ),
  archiveAgeAlarmSeconds: integer({
    description:
      'The archive-age alarm fires when the oldest WAL segment not yet in the backup repository is older than this (checked every 5 minutes; it fires on 2 of 3 checks, or when there is no reading).',
    defaultValue: 300,
    min: 30,
    max: 86400,
    unit: 's',
  }),
  backupAgeAlarmHours: integer({
    description:
      'The backup-age alarm fires when the newest backup in the repository ended longer ago than this, or there is none. Above the longest gap between scheduled backups plus the time one takes.',
    defaultValue: 30,
    min: 2,
    max: 8760,
    unit: 'h',
  }),
  alarmEmail: text({
    description:
      "Subscribe this address to the cluster's alarm topic (AWS sends a confirmation mail first). Every alarm notifies the topic when it fires and when it clears.",
    pattern: /^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$/,
    allowed: 'one e-mail address',
  }),
  alarmTopicArn: text({
    description:
      'Send every alarm to this existing SNS topic instead of a new one (its policy must let cloudwatch.amazonaws.com publish, and its KMS key, if any, let CloudWatch use it). Not with alarmEmail: subscribe on that topic.',
    pattern: /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/,
    allowed: 'an SNS topic ARN such as arn:aws:sns:eu-west-1:123456789012:oncall',
  }),
  secretsBreakGlassRoleArn: text({
    description:
      "An IAM role that may read the cluster's secrets (and write the CA's) besides the functions and node roles they are made for: every secret's resource policy denies every other role, whatever its own IAM policy says.",
    pattern: /^arn:aws[a-z-]*:iam::\d{12}:role\/[A-Za-z0-9+=,.@_/-]{1,512}$/,
    allowed: 'an IAM role ARN such as arn:aws:iam::123456789012:role/break-glass',
  }),
  replicaReplayDelayAlarmSeconds: integer({
    description:
      "A replica's alarm fires when its replay has stood behind what it received for longer than this (replay paused, or a conflict holding it).",
    defaultValue: 60,
    min: 10,
    max: 86400,
    unit: 's',
  }),
  longTransactionAlarmSeconds: integer({
    description:
      'The long-transaction alarm fires when any client transaction on any backend has been open longer than this (it holds back vacuum and, idle, its locks).',
    defaultValue: 120,
    min: 30,
    max: 86400,
    unit: 's',
  }),
  xidAgeAlarm: integer({
    description:
      'The wraparound alarm fires when the oldest unfrozen transaction ID of any database (`age(datfrozenxid)`) is older than this; PostgreSQL stops taking writes near 2 billion.',
    defaultValue: 1000000000,
    min: 100000000,
    max: 2000000000,
    unit: 'transactions',
  }),
  connectionsAlarmPercent: integer({
    description:
      "The connections alarm fires when a backend's client connections exceed this share of `max_connections`.",
    defaultValue: 80,
    min: 10,
    max: 100,
    unit: '%',
  }),
  dataVolumeFreeAlarmPercent: integer({
    description:
      "The data-volume alarm fires when any backend's data volume has less than this share free (readings each minute from every backend).",
    defaultValue: 15,
    min: 1,
    max: 50,
    unit: '%',
  }),
  pendingRestartAlarmHours: integer({
    description:
      'The pending-restart alarm fires when a member has waited this long for a restart that applies a changed PostgreSQL parameter (run the rolling upgrade with component os, or restart through Patroni).',
    defaultValue: 24,
    min: 1,
    max: 168,
    unit: 'h',
  }),
  pemEnabled: boolean({
    description:
      "Deploy the PEM web tier and install PEM from EDB's repositories. false gives a plain HA PostgreSQL cluster.",
    defaultValue: true,
  }),
  edbRepoTokenSecretName: text({
    description:
      'Name of the Secrets Manager secret (create it before deploying) holding the EDB repository token.',
    defaultValue: 'pem-ha/edb-repo-token',
    pattern: /^[A-Za-z0-9/_+=.@-]{1,512}$/,
    allowed: 'a Secrets Manager secret name',
  }),
} satisfies Record<string, Setting<unknown>>;

export type SettingName = keyof typeof SETTINGS;
