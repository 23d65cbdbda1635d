import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { CLUSTER_METRICS as M } from '../../functions/lib/metric-names';
import { ClusterPki } from './cluster-pki';
import {
  AlarmOptions,
  ClusterAlarmThresholds,
  clusterThresholds,
  DCS_NOT_SEEN_SECONDS,
  ETCD_DB_PERCENT,
  pascal,
} from './cluster-thresholds';
import { checkRange } from './errors';
import { acknowledge } from './nag';
import { TaskFunction } from './task-function';

export type { ClusterAlarmThresholds };

export interface ClusterMonitoringProps {
  readonly clusterName: string;
  /** The backends Patroni runs on (the publisher reads each one's REST API). */
  readonly backends: readonly { readonly name: string; readonly address: string }[];
  /** etcd member names: quorum + 1 of them must answer healthy. */
  readonly etcdMembers: readonly string[];
  readonly pki: ClusterPki;
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly thresholds: ClusterAlarmThresholds;
}

const MINUTE = Duration.minutes(1);

/**
 * The cluster's health as 1-minute metrics with alarms: a function reads
 * Patroni's REST API every minute (primaries, running members, each member's
 * lag, replay delay and DCS contact), and each node's collector (installed by
 * the etcd and patroni documents) publishes its own database, disk and etcd
 * readings with a heartbeat. Missing heartbeats are breaching: a silent node
 * or publisher raises its alarm.
 */
export class ClusterMonitoring extends Construct implements ec2.IConnectable {
  readonly publisher: TaskFunction;
  readonly alarms: cloudwatch.Alarm[] = [];
  private readonly clusterName: string;

  constructor(scope: Construct, id: string, props: ClusterMonitoringProps) {
    super(scope, id);
    const t = clusterThresholds(this, props.thresholds);
    const { replayDelay, longTransaction, xidAge, connections, volumeFree, pendingRestartHours } =
      t;
    checkRange(this, 'backends.length', props.backends.length, 1, 9);
    checkRange(this, 'etcdMembers.length', props.etcdMembers.length, 1, 9);
    this.clusterName = props.clusterName;

    this.publisher = new TaskFunction(this, 'Publisher', {
      handlerFolder: 'cluster-metrics',
      description: "pem-ha: publishes Patroni's view of the cluster every minute",
      environment: {
        CLUSTER_NAME: props.clusterName,
        TRUST_SECRET: props.pki.trustSecretName,
        BACKENDS: JSON.stringify(props.backends.map(({ name, address }) => ({ name, address }))),
      },
      timeout: Duration.seconds(30),
      vpc: { vpc: props.vpc, subnets: props.subnets },
    });
    props.pki.grantReadTrust(this.publisher);
    acknowledge(this.publisher.role, [
      ['Resource::*', 'The VPC network interfaces of a function in the VPC take no resource ARN.'],
    ]);
    new events.Rule(this, 'EveryMinute', {
      description: `pem-ha ${props.clusterName}: publish the cluster's health`,
      schedule: events.Schedule.rate(MINUTE),
      targets: [new targets.LambdaFunction(this.publisher.function, { retryAttempts: 0 })],
    });

    const alarm = (alarmId: string, options: AlarmOptions) => {
      const created = new cloudwatch.Alarm(this, alarmId, {
        alarmDescription: `pem-ha ${props.clusterName}: ${options.description}`,
        metric: options.metric,
        threshold: options.threshold,
        comparisonOperator:
          options.comparison ?? cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: options.periods ?? 1,
        datapointsToAlarm: options.datapoints ?? options.periods ?? 1,
        treatMissingData: options.missing ?? cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      this.alarms.push(created);
      return created;
    };
    const below = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD;
    const breaching = cloudwatch.TreatMissingData.BREACHING;
    const backendCount = props.backends.length;

    // Patroni's view.
    alarm('PublisherSilentAlarm', {
      metric: this.metric(M.publisherRuns, { statistic: cloudwatch.Stats.SAMPLE_COUNT }),
      threshold: 1,
      comparison: below,
      periods: 2,
      missing: breaching,
      description:
        'the cluster-metrics function has not published for 2 minutes: every Patroni-based alarm is blind. See its log group.',
    });
    alarm('NoPrimaryAlarm', {
      metric: this.metric(M.primaryCount, { statistic: cloudwatch.Stats.MAXIMUM }),
      threshold: 1,
      comparison: below,
      periods: 2,
      missing: breaching,
      description:
        'no member has answered as the primary for 2 minutes: writes fail. Run `patronictl list` on a backend; if PostgreSQL cannot start on the old primary, see README "When the primary\'s disk fills".',
    });
    alarm('SeveralPrimariesAlarm', {
      metric: this.metric(M.primaryCount, { statistic: cloudwatch.Stats.MAXIMUM }),
      threshold: 1,
      description:
        'more than one member answers as the primary (split brain): stop the one that is not the DCS leader.',
    });
    alarm('MemberNotRunningAlarm', {
      metric: this.metric(M.membersRunning, { statistic: cloudwatch.Stats.MINIMUM }),
      threshold: backendCount,
      comparison: below,
      missing: breaching,
      description: `fewer than ${backendCount} members run PostgreSQL: redundancy is lost (a planned restart in a rolling upgrade shows here for a minute). See the NodeSilent alarms and \`patronictl list\`; a lost node is replaced by the node replacement runbook.`,
    });
    alarm('PendingRestartAlarm', {
      metric: this.metric(M.pendingRestartMembers, {
        statistic: cloudwatch.Stats.MINIMUM,
        period: Duration.hours(1),
      }),
      threshold: 1,
      comparison: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      periods: pendingRestartHours,
      description: `a member has waited ${pendingRestartHours} h for a restart that applies a changed parameter: run the rolling upgrade (component os) or restart it through Patroni.`,
    });
    for (const backend of props.backends) {
      const member = { Member: backend.name };
      alarm(`${pascal(backend.name)}LagAlarm`, {
        metric: this.metric(M.replicaLagBytes, { dimensionsMap: member }),
        threshold: t.replicaMaxLagBytes,
        periods: 3,
        datapoints: 2,
        description: `${backend.name} replays more than ${t.replicaMaxLagBytes} bytes behind the primary (2 of 3 minutes): the read endpoint drops it and a failover to it would lose that much. See pg_stat_replication on the primary.`,
      });
      alarm(`${pascal(backend.name)}ReplayDelayAlarm`, {
        metric: this.metric(M.replayDelaySeconds, { dimensionsMap: member }),
        threshold: replayDelay,
        description: `${backend.name} has received WAL it has not replayed for over ${replayDelay} s: replay is paused (pg_wal_replay_resume()) or held by a conflict.`,
      });
      alarm(`${pascal(backend.name)}DcsNotSeenAlarm`, {
        metric: this.metric(M.dcsLastSeenSeconds, { dimensionsMap: member }),
        threshold: DCS_NOT_SEEN_SECONDS,
        description: `${backend.name}'s Patroni has not read etcd for over ${DCS_NOT_SEEN_SECONDS} s: as a primary it demotes itself at ttl. Check etcd and the network to it.`,
      });
    }

    // The nodes' own readings.
    const nodes = [...props.etcdMembers, ...props.backends.map((b) => b.name)];
    for (const node of nodes) {
      alarm(`${pascal(node)}SilentAlarm`, {
        metric: this.metric(M.nodeHeartbeat, {
          statistic: cloudwatch.Stats.SAMPLE_COUNT,
          dimensionsMap: { Node: node },
        }),
        threshold: 1,
        comparison: below,
        periods: 2,
        missing: breaching,
        description: `${node} has sent no metrics for 2 minutes: the node is down or unreachable, or its pem-ha-metrics service stopped (journalctl -u pem-ha-metrics).`,
      });
    }
    const quorumPlusOne = Math.floor(props.etcdMembers.length / 2) + 2;
    alarm('EtcdHealthAlarm', {
      metric: this.metric(M.etcdMembersHealthy),
      threshold: Math.min(quorumPlusOne, props.etcdMembers.length),
      comparison: below,
      periods: 2,
      missing: breaching,
      description: `fewer than ${Math.min(quorumPlusOne, props.etcdMembers.length)} etcd members answer healthy (2 readings): one more loss and Patroni cannot keep a leader. Replace the member (node replacement runbook).`,
    });
    alarm('EtcdNoLeaderAlarm', {
      metric: this.metric(M.etcdLeaderPresent),
      threshold: 1,
      comparison: below,
      description:
        'no etcd member sees a leader: the DCS takes no writes (Patroni keeps the primary only in failsafe mode).',
    });
    alarm('EtcdDbSizeAlarm', {
      metric: this.metric(M.etcdDbSizePercent),
      threshold: ETCD_DB_PERCENT,
      description: `etcd's database is over ${ETCD_DB_PERCENT} % of its quota: at 100 % it takes no writes. Compact and defragment it.`,
    });
    alarm('LongTransactionAlarm', {
      metric: this.metric(M.oldestTransactionSeconds),
      threshold: longTransaction,
      description: `a client transaction has been open for over ${longTransaction} s: it holds back vacuum and its locks. Find it in pg_stat_activity (xact_start) and end it with pg_terminate_backend.`,
    });
    alarm('XidAgeAlarm', {
      metric: this.metric(M.xidAge),
      threshold: xidAge,
      description: `a database's oldest unfrozen transaction ID is over ${xidAge} old: vacuum it (VACUUM FREEZE) before PostgreSQL stops taking writes near 2 billion.`,
    });
    alarm('ConnectionsAlarm', {
      metric: this.metric(M.connectionsPercent),
      threshold: connections,
      periods: 2,
      description: `client connections are over ${connections} % of max_connections on a backend (2 readings): new sessions will soon be refused.`,
    });
    alarm('DataVolumeAlarm', {
      metric: this.metric(M.dataVolumeFreePercent, { statistic: cloudwatch.Stats.MINIMUM }),
      threshold: volumeFree,
      comparison: below,
      description: `a backend's data volume has less than ${volumeFree} % free: when WAL fills it PostgreSQL stops. Grow it (dataVolumeSizeGiB, then deploy); once the primary's is full, run the failover runbook (README "When the primary's disk fills").`,
    });
    alarm('SlotRetainedWalAlarm', {
      metric: this.metric(M.slotRetainedWalBytes),
      threshold: t.slotRetainedWalBytes,
      periods: 2,
      description: `a replication slot holds over ${t.slotRetainedWalBytes} bytes of WAL (2 readings): its replica is gone or stuck; at max_slot_wal_keep_size the slot is dropped and the replica must be rebuilt.`,
    });
  }

  get connections(): ec2.Connections {
    return this.publisher.connections;
  }

  /** Lets a node role publish its collector's readings, into this namespace only. */
  grantPublishNodeMetrics(role: iam.Role): iam.Grant {
    const grant = iam.Grant.addToPrincipal({
      grantee: role,
      actions: ['cloudwatch:PutMetricData'],
      resourceArns: ['*'],
      conditions: { StringEquals: { 'cloudwatch:namespace': M.namespace } },
    });
    acknowledge(role, [
      [
        'Resource::*',
        `cloudwatch:PutMetricData takes no resource ARN; the condition limits it to the ${M.namespace} namespace.`,
      ],
    ]);
    return grant;
  }

  /** One of the cluster's metrics (1 minute, Maximum unless given). */
  metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    const fromPublisher = PUBLISHER_METRICS.has(metricName);
    return new cloudwatch.Metric({
      namespace: M.namespace,
      metricName,
      statistic: cloudwatch.Stats.MAXIMUM,
      period: MINUTE,
      ...props,
      dimensionsMap: {
        // Powertools adds `service` to what the function publishes.
        ...(fromPublisher ? { service: M.service } : {}),
        ClusterName: this.clusterName,
        ...props?.dimensionsMap,
      },
    });
  }
}

const PUBLISHER_METRICS: ReadonlySet<string> = new Set([
  M.publisherRuns,
  M.primaryCount,
  M.membersRunning,
  M.timeline,
  M.pendingRestartMembers,
  M.paused,
  M.replicaLagBytes,
  M.replayDelaySeconds,
  M.dcsLastSeenSeconds,
]);
