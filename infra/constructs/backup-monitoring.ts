import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { ClusterInventory } from '../../functions/lib/inventory';
import { BACKUP_METRICS } from '../../functions/lib/metric-names';
import { backupHealthDefinition } from '../workflows/backup-definition';
import { checkRange } from './errors';
import { acknowledge } from './nag';
import { NodeDocuments } from './node-documents';
import { RunbookFunctions } from './runbook-functions';
import { runbookStateMachine } from './runbook-state-machine';
import { TaskFunction } from './task-function';

export interface BackupMonitoringProps {
  readonly clusterName: string;
  readonly documents: NodeDocuments;
  readonly functions: RunbookFunctions;
  readonly inventory: ClusterInventory;
  /** pgBackRest's archive-push-queue-max: the queue alarm fires at half of it. */
  readonly archivePushQueueMaxGiB: number;
  /** The oldest WAL segment not in the repository may be this old. @default 300 seconds */
  readonly archiveAgeAlarmSeconds?: number;
  /** The newest backup may have ended this long ago. @default 30 hours */
  readonly backupAgeAlarmHours?: number;
}

/** How often the health runbook reads the primary: each alarm period holds one reading. */
const CHECK_EVERY = Duration.minutes(5);
/** The status action reads PostgreSQL and `pgbackrest info` (bounded at 60 s on the node). */
const STATUS_TIMEOUT_SECONDS = 300;

/**
 * The backup health runbook, every 5 minutes: the primary's archive age, WAL
 * queue and archiver failures and the age of the newest backup become
 * CloudWatch metrics, each with an alarm that counts missing data (no
 * primary, a failed run, an unreadable repository) as breaching.
 */
export class BackupMonitoring extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly archiveAgeAlarm: cloudwatch.Alarm;
  readonly archiveQueueAlarm: cloudwatch.Alarm;
  readonly archiveFailingAlarm: cloudwatch.Alarm;
  readonly backupAgeAlarm: cloudwatch.Alarm;
  private readonly clusterName: string;

  constructor(scope: Construct, id: string, props: BackupMonitoringProps) {
    super(scope, id);
    const archiveAgeSeconds = props.archiveAgeAlarmSeconds ?? 300;
    const backupAgeHours = props.backupAgeAlarmHours ?? 30;
    checkRange(this, 'archiveAgeAlarmSeconds', archiveAgeSeconds, 30, 86400);
    checkRange(this, 'backupAgeAlarmHours', backupAgeHours, 2, 8760);
    checkRange(this, 'archivePushQueueMaxGiB', props.archivePushQueueMaxGiB, 1, 65536);
    this.clusterName = props.clusterName;

    const recordHealth = new TaskFunction(this, 'RecordBackupHealth', {
      handlerFolder: 'record-backup-health',
      description: "pem-ha: publishes the primary's archive and backup health",
      environment: { CLUSTER_NAME: props.clusterName },
    });
    props.documents.grantReadResults(recordHealth);
    acknowledge(recordHealth.role, [
      ['Resource::*', 'ssm:GetCommandInvocation takes no resource ARN.'],
    ]);
    const fns = props.functions;
    this.stateMachine = runbookStateMachine(this, 'StateMachine', {
      comment: `pem-ha ${props.clusterName}: publish the primary's archive and backup health (scheduled)`,
      input: { check: fns.checkInput, runbook: 'backup-health' },
      definition: backupHealthDefinition(this, {
        inventory: props.inventory,
        backup: {
          name: props.documents.documentName('backup'),
          runTimeoutSeconds: STATUS_TIMEOUT_SECONDS,
        },
        clusterStatus: fns.clusterStatus.function,
        nodeCommand: fns.nodeCommand.function,
        recordBackupHealth: recordHealth.function,
      }),
      invoked: [fns.nodeCommand, fns.clusterStatus, recordHealth],
      // Shorter than the schedule, so runs never pile up.
      timeout: CHECK_EVERY.minus(Duration.seconds(30)),
    });
    new events.Rule(this, 'Schedule', {
      description: `pem-ha ${props.clusterName}: read the archive and backup health`,
      schedule: events.Schedule.rate(CHECK_EVERY),
      // {} rather than the scheduled event: the runbook takes no field.
      targets: [
        new targets.SfnStateMachine(this.stateMachine, {
          input: events.RuleTargetInput.fromObject({}),
        }),
      ],
    });

    const queueAlarmBytes = (props.archivePushQueueMaxGiB * 1024 ** 3) / 2;
    const alarm = (
      alarmId: string,
      metric: cloudwatch.IMetric,
      threshold: number,
      description: string,
    ) =>
      new cloudwatch.Alarm(this, alarmId, {
        alarmDescription: `pem-ha ${props.clusterName}: ${description}`,
        metric,
        threshold,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        // Two readings of three: one late or lost run does not page anyone.
        evaluationPeriods: 3,
        datapointsToAlarm: 2,
        // No reading (no primary, a failed run, an unreadable repository) is a finding.
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      });
    this.archiveAgeAlarm = alarm(
      'ArchiveAgeAlarm',
      this.metricArchiveAge(),
      archiveAgeSeconds,
      `WAL older than ${archiveAgeSeconds} s is not in the backup repository (or no reading): point-in-time recovery would lose it. See pg_stat_archiver and /var/log/pgbackrest on the primary.`,
    );
    this.archiveQueueAlarm = alarm(
      'ArchiveQueueAlarm',
      this.metricArchiveQueue(),
      queueAlarmBytes,
      `the primary holds half of archive-push-queue-max (${props.archivePushQueueMaxGiB} GiB) of unarchived WAL (or no reading); past the limit pgBackRest drops WAL to keep PostgreSQL running.`,
    );
    this.archiveFailingAlarm = alarm(
      'ArchiveFailingAlarm',
      this.metricArchiveFailing(),
      1,
      "the primary's archive_command keeps failing (or no reading). See pg_stat_archiver and /var/log/pgbackrest on the primary.",
    );
    this.backupAgeAlarm = alarm(
      'BackupAgeAlarm',
      this.metricHoursSinceLastBackup(),
      backupAgeHours,
      `no backup in the repository ended in the last ${backupAgeHours} hours (or there is none): start the backup runbook with {"type": "full"}.`,
    );
  }

  /** Share of the primary's data volume PostgreSQL may still fill (minimum per 5 minutes). */
  metricDataVolumeFree(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(BACKUP_METRICS.dataVolumeFreePercent, {
      statistic: cloudwatch.Stats.MINIMUM,
      ...props,
    });
  }

  /** Age of the oldest WAL segment not yet in the repository (maximum per 5 minutes). */
  metricArchiveAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(BACKUP_METRICS.archiveAgeSeconds, props);
  }

  /** Bytes of WAL waiting for archive_command on the primary. */
  metricArchiveQueue(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(BACKUP_METRICS.archiveQueueBytes, props);
  }

  /** 1 while the primary's archiver fails. */
  metricArchiveFailing(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(BACKUP_METRICS.archiveFailing, props);
  }

  /** Hours since the newest backup in the repository ended. */
  metricHoursSinceLastBackup(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(BACKUP_METRICS.hoursSinceLastBackup, props);
  }

  private metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: BACKUP_METRICS.namespace,
      metricName,
      dimensionsMap: { service: BACKUP_METRICS.service, ClusterName: this.clusterName },
      statistic: cloudwatch.Stats.MAXIMUM,
      period: CHECK_EVERY,
      ...props,
    });
  }
}
