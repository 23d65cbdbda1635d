import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { CLUSTER_METRICS as M } from '../../functions/lib/metric-names';
import type { BackupMonitoring } from './backup-monitoring';
import type { CertificateRotation } from './certificate-rotation';
import type { ClusterMonitoring } from './cluster-monitoring';
import type { DatabaseEndpoints } from './database-endpoints';
import { metricRunbookFailures } from './runbook-state-machine';
import type { WebTier } from './web-tier';

export interface ClusterDashboardProps {
  readonly clusterName: string;
  readonly monitoring: ClusterMonitoring;
  readonly endpoints: DatabaseEndpoints;
  /** @default - no web row (PEM disabled) */
  readonly web?: WebTier;
  readonly backupMonitoring: BackupMonitoring;
  readonly rotation: CertificateRotation;
  readonly runbooks: readonly { readonly label: string; readonly stateMachine: sfn.StateMachine }[];
}

const WIDTH = 24;

/**
 * One CloudWatch dashboard per cluster, a row per concern: the alarms, the
 * endpoints, replication, etcd, database health, runbooks, certificates and
 * backups. Every figure comes from the constructs' metric methods, so the
 * dashboard shows exactly what the alarms watch.
 */
export class ClusterDashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  /** Opens the dashboard in the CloudWatch console. */
  readonly url: string;

  constructor(scope: Construct, id: string, props: ClusterDashboardProps) {
    super(scope, id);
    const m = props.monitoring;
    const graph = (title: string, metrics: cloudwatch.IMetric[], width = 8) =>
      new cloudwatch.GraphWidget({ title, left: metrics, width, height: 6 });
    const perMember = (metricName: string) =>
      m.alarms
        .map((alarm) => alarm.metric)
        .filter(
          (metric): metric is cloudwatch.Metric =>
            metric instanceof cloudwatch.Metric &&
            metric.metricName === metricName &&
            metric.dimensions?.Member !== undefined,
        )
        .map((metric) => metric.with({ label: String(metric.dimensions?.Member) }));
    // A heading line, then the row's graphs side by side.
    const row = (title: string, ...widgets: cloudwatch.IWidget[]): cloudwatch.IWidget[][] => [
      [new cloudwatch.TextWidget({ markdown: `## ${title}`, width: WIDTH, height: 1 })],
      widgets,
    ];

    const endpointMetrics: cloudwatch.IMetric[] = [
      props.endpoints.metricPrimaryHealthyHosts({ label: 'write (5432) healthy targets' }),
      props.endpoints.metricReplicaHealthyHosts({ label: 'read (5433) healthy targets' }),
      ...(props.web ? [props.web.metricHealthyHosts({ label: 'PEM web healthy targets' })] : []),
    ];
    const runbookFailures = props.runbooks.map(({ label, stateMachine }, index) =>
      metricRunbookFailures(stateMachine, label, { period: Duration.minutes(5) }, String(index)),
    );
    const backups = props.backupMonitoring;

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.clusterName,
      defaultInterval: Duration.hours(6),
      widgets: [
        [
          new cloudwatch.AlarmStatusWidget({
            title: 'Alarms',
            alarms: m.alarms,
            width: WIDTH,
            height: 6,
          }),
        ],
        ...row('Endpoints', graph('NLB and ALB healthy targets', endpointMetrics, WIDTH)),
        ...row(
          'Replication (Patroni)',
          graph('Primaries and running members', [
            m.metric(M.primaryCount, { label: 'primaries' }),
            m.metric(M.membersRunning, { statistic: 'Minimum', label: 'members running' }),
            m.metric(M.timeline, { label: 'timeline' }),
          ]),
          graph('Replay lag (bytes)', perMember(M.replicaLagBytes)),
          graph('Replay delay and DCS last seen (s)', [
            ...perMember(M.replayDelaySeconds),
            ...perMember(M.dcsLastSeenSeconds),
          ]),
        ),
        ...row(
          'etcd',
          graph('Members healthy, leader present', [
            m.metric(M.etcdMembersHealthy, { label: 'members healthy' }),
            m.metric(M.etcdLeaderPresent, { label: 'leader present' }),
          ]),
          graph('Database size (% of quota)', [
            m.metric(M.etcdDbSizePercent, { label: 'db size %' }),
          ]),
          graph('Node heartbeats', [
            m.metric(M.nodeHeartbeat, { statistic: 'SampleCount', label: 'node readings' }),
          ]),
        ),
        ...row(
          'Database health (every backend)',
          graph('Oldest transaction (s), XID age', [
            m.metric(M.oldestTransactionSeconds, { label: 'oldest transaction s' }),
            m.metric(M.xidAge, { label: 'XID age' }),
          ]),
          graph('Connections (% of max), data volume free (%)', [
            m.metric(M.connectionsPercent, { label: 'connections %' }),
            m.metric(M.dataVolumeFreePercent, {
              statistic: 'Minimum',
              label: 'data volume free %',
            }),
          ]),
          graph('Slot retained WAL (bytes)', [
            m.metric(M.slotRetainedWalBytes, { label: 'slot retained WAL' }),
          ]),
        ),
        ...row(
          'Runbooks (failed, timed out or aborted per 5 min)',
          graph('Runbook failures', runbookFailures, WIDTH),
        ),
        ...row(
          'Certificates and backups',
          graph('Days to the nearest certificate expiry', [
            props.rotation.metricDaysToExpiry({ period: Duration.hours(1) }),
          ]),
          graph('Archive age (s), hours since the last backup', [
            backups.metricArchiveAge({ label: 'archive age s' }),
            backups.metricHoursSinceLastBackup({ label: 'hours since backup' }),
          ]),
          graph('WAL queued for the repository (bytes)', [
            backups.metricArchiveQueue({ label: 'archive queue' }),
          ]),
        ),
      ],
    });
    const region = Stack.of(this).region;
    this.url = `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards:name=${props.clusterName}`;
  }
}
