import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { ClusterInventory } from '../../functions/lib/inventory';
import { restoreDefinition } from '../workflows/restore-definition';
import { acknowledge } from './nag';
import { NodeDocuments } from './node-documents';
import { RunbookFunctions } from './runbook-functions';
import { metricRunbookFailures, runbookStateMachine } from './runbook-state-machine';
import { TaskFunction } from './task-function';

export interface PointInTimeRestoreProps {
  readonly clusterName: string;
  readonly documents: NodeDocuments;
  readonly functions: RunbookFunctions;
  readonly inventory: ClusterInventory;
}

/** Seconds to wait between two other steps (the patroni document's own bound is an hour). */
const RESTORE_START_SECONDS = 3300;

/**
 * The point-in-time restore runbook, started by hand with
 * `{"confirm": "<clusterName>", "time": "<ISO 8601>"}` (or `lsn`,
 * `restorePoint`, `latest: true`): restores the whole cluster in place from
 * the backup repository, refusing before anything is touched when the input,
 * the target or another running runbook says no.
 */
export class PointInTimeRestore extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly restoreSteps: TaskFunction;

  constructor(scope: Construct, id: string, props: PointInTimeRestoreProps) {
    super(scope, id);
    // A stable, readable name (operators start it by hand).
    const stateMachineName = `${props.clusterName}-point-in-time-restore`;
    this.restoreSteps = new TaskFunction(this, 'RestoreSteps', {
      handlerFolder: 'restore',
      description: "pem-ha: checks a restore's input and target before any node is touched",
      environment: {
        CLUSTER_NAME: props.clusterName,
      },
    });
    props.documents.grantReadResults(this.restoreSteps);
    acknowledge(this.restoreSteps.role, [
      ['Resource::*', 'ssm:GetCommandInvocation takes no resource ARN.'],
    ]);

    const fns = props.functions;
    const documentRun = (kind: 'restore' | 'patroni' | 'backup') => ({
      name: props.documents.documentName(kind),
      runTimeoutSeconds: props.documents.runTimeoutSeconds(kind),
    });
    this.stateMachine = runbookStateMachine(this, 'StateMachine', {
      comment: `pem-ha ${props.clusterName}: point-in-time restore of the whole cluster, in place (started by hand, with confirm)`,
      stateMachineName,
      lock: { lock: props.functions.lock, runbook: 'restore' },
      definition: restoreDefinition(this, {
        inventory: props.inventory,
        documents: {
          restore: documentRun('restore'),
          patroni: documentRun('patroni'),
          backup: documentRun('backup'),
        },
        restore: this.restoreSteps.function,
        clusterStatus: fns.clusterStatus.function,
        nodeCommand: fns.nodeCommand.function,
        restoreSeconds: RESTORE_START_SECONDS,
      }),
      invoked: [fns.nodeCommand, fns.clusterStatus, this.restoreSteps],
      // The restore (an hour at most), a full backup (six), the clones and the checks.
      timeout: Duration.hours(12),
    });
  }

  /** Restore executions that failed, timed out or were aborted. */
  metricFailures(props?: cloudwatch.MathExpressionOptions): cloudwatch.MathExpression {
    return metricRunbookFailures(this.stateMachine, 'failed restores', props);
  }

  /** Lets `grantee` start a restore. */
  grantStartExecution(grantee: iam.IGrantable): iam.Grant {
    return this.stateMachine.grantStartExecution(grantee);
  }
}
