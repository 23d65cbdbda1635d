import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { ClusterInventory } from '../../functions/lib/inventory';
import { backupDefinition } from '../workflows/backup-definition';
import type { BackupType } from '../../functions/lib/runbook-inputs';
import { NodeDocuments } from './node-documents';
import { RunbookFunctions } from './runbook-functions';
import { metricRunbookFailures, runbookStateMachine } from './runbook-state-machine';

export interface ScheduledBackupsProps {
  readonly clusterName: string;
  readonly documents: NodeDocuments;
  readonly functions: RunbookFunctions;
  readonly inventory: ClusterInventory;
  /** When a full backup is taken. @default weekly, Sunday 01:00 UTC */
  readonly fullSchedule?: events.Schedule;
  /** When a differential backup is taken. @default Monday to Saturday, 01:00 UTC */
  readonly diffSchedule?: events.Schedule;
}

/**
 * The backup runbook and its schedules: a full backup weekly and a
 * differential one on the other days by default, each taken on the primary
 * the runbook locates; an alarm on failed runs.
 */
export class ScheduledBackups extends Construct {
  readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: ScheduledBackupsProps) {
    super(scope, id);
    const fns = props.functions;
    this.stateMachine = runbookStateMachine(this, 'StateMachine', {
      comment: `pem-ha ${props.clusterName}: take a pgBackRest backup ({"type": "full"} or {"type": "diff"}) on the primary`,
      lock: { lock: props.functions.lock, runbook: 'backup' },
      input: { check: props.functions.checkInput, runbook: 'backup' },
      definition: backupDefinition(this, {
        inventory: props.inventory,
        backup: {
          name: props.documents.documentName('backup'),
          runTimeoutSeconds: props.documents.runTimeoutSeconds('backup'),
        },
        clusterStatus: fns.clusterStatus.function,
        nodeCommand: fns.nodeCommand.function,
      }),
      invoked: [fns.nodeCommand, fns.clusterStatus],
      // The backup document's own bound, and the steps around it.
      timeout: Duration.seconds(props.documents.runTimeoutSeconds('backup')).plus(
        Duration.minutes(30),
      ),
    });

    const scheduled: [string, BackupType, events.Schedule][] = [
      [
        'FullSchedule',
        'full',
        props.fullSchedule ?? events.Schedule.expression('cron(0 1 ? * SUN *)'),
      ],
      [
        'DiffSchedule',
        'diff',
        props.diffSchedule ?? events.Schedule.expression('cron(0 1 ? * MON-SAT *)'),
      ],
    ];
    for (const [ruleId, type, schedule] of scheduled) {
      new events.Rule(this, ruleId, {
        description: `pem-ha ${props.clusterName}: start a ${type} backup`,
        schedule,
        targets: [
          new targets.SfnStateMachine(this.stateMachine, {
            input: events.RuleTargetInput.fromObject({ type }),
          }),
        ],
      });
    }
  }

  /** Backup executions that failed, timed out or were aborted. */
  metricFailures(props?: cloudwatch.MathExpressionOptions): cloudwatch.MathExpression {
    return metricRunbookFailures(this.stateMachine, 'failed backups', props);
  }

  /** Lets `grantee` start a backup by hand. */
  grantStartExecution(grantee: iam.IGrantable): iam.Grant {
    return this.stateMachine.grantStartExecution(grantee);
  }
}
