import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { CERTIFICATE_METRICS } from '../../functions/lib/metric-names';
import type { ClusterInventory } from '../../functions/lib/inventory';
import { rootRolloverDefinition } from '../workflows/root-rollover-definition';
import { rotationDefinition } from '../workflows/rotation-definition';
import { MAX_RENEW_BEFORE_DAYS } from '../../functions/lib/runbook-inputs';
import { ValidationError } from './errors';
import { NodeDocuments } from './node-documents';
import { RunbookFunctions } from './runbook-functions';
import { metricRunbookFailures, runbookStateMachine } from './runbook-state-machine';

export interface CertificateRotationProps {
  readonly clusterName: string;
  readonly documents: NodeDocuments;
  readonly functions: RunbookFunctions;
  readonly inventory: ClusterInventory;
  /** When rotation runs. @default daily at 12:00 UTC */
  readonly schedule?: events.Schedule;
  /** Certificates with fewer days left are renewed. @default 30 */
  readonly renewBeforeDays?: number;
  /** The expiry alarm fires below this many days left on any certificate. @default 21 */
  readonly expiryAlarmDays?: number;
}

/**
 * Scheduled certificate rotation: a state machine that renews, one node at a
 * time and with no restart, every certificate close to expiry; an alarm on the
 * fewest days left on any certificate (missing data counts as breaching: no
 * data means no rotation ran) and one on failed runs.
 */
export class CertificateRotation extends Construct {
  readonly stateMachine: sfn.StateMachine;
  /** Root rollover: started by hand, rarely (a new root, every trust file and leaf). */
  readonly rootRollover: sfn.StateMachine;
  readonly expiryAlarm: cloudwatch.Alarm;
  private readonly clusterName: string;

  constructor(scope: Construct, id: string, props: CertificateRotationProps) {
    super(scope, id);
    const renewBeforeDays = props.renewBeforeDays ?? 30;
    const expiryAlarmDays = props.expiryAlarmDays ?? 21;
    if (
      !Number.isInteger(renewBeforeDays) ||
      renewBeforeDays < 1 ||
      renewBeforeDays > MAX_RENEW_BEFORE_DAYS
    ) {
      throw new ValidationError(
        this,
        `renewBeforeDays must be a whole number from 1 to ${MAX_RENEW_BEFORE_DAYS}; got ${renewBeforeDays}`,
      );
    }
    if (
      !Number.isInteger(expiryAlarmDays) ||
      expiryAlarmDays < 1 ||
      expiryAlarmDays >= renewBeforeDays
    ) {
      throw new ValidationError(
        this,
        `expiryAlarmDays must be a whole number from 1 to renewBeforeDays - 1 (${renewBeforeDays - 1}), so a renewal is due before the alarm; got ${expiryAlarmDays}`,
      );
    }
    this.clusterName = props.clusterName;
    const fns = props.functions;
    const documentRun = {
      name: props.documents.documentName('certificates'),
      runTimeoutSeconds: props.documents.runTimeoutSeconds('certificates'),
    };
    const taskFunctions = {
      nodeCommand: fns.nodeCommand.function,
      signCertificates: fns.signCertificates.function,
      recordExpiry: fns.recordExpiry.function,
      clusterStatus: fns.clusterStatus.function,
    };
    this.stateMachine = runbookStateMachine(this, 'StateMachine', {
      comment: `pem-ha ${props.clusterName}: renew certificates close to expiry, one node at a time, no restarts`,
      lock: { lock: fns.lock, runbook: 'rotation' },
      input: { check: fns.checkInput, runbook: 'rotation' },
      definition: rotationDefinition(this, {
        inventory: props.inventory,
        certificates: documentRun,
        ...taskFunctions,
        defaultRenewBeforeDays: renewBeforeDays,
      }),
      invoked: [fns.nodeCommand, fns.signCertificates, fns.recordExpiry, fns.clusterStatus],
    });
    const rollover = new Construct(this, 'RootRollover');
    this.rootRollover = runbookStateMachine(this, 'RootRolloverStateMachine', {
      comment: `pem-ha ${props.clusterName}: replace the root CA (both roots trusted, every leaf reissued, old root removed)`,
      lock: { lock: fns.lock, runbook: 'root-rollover' },
      input: { check: fns.checkInput, runbook: 'root-rollover' },
      definition: rootRolloverDefinition(rollover, {
        inventory: props.inventory,
        certificates: documentRun,
        ...taskFunctions,
        clusterCa: fns.clusterCa.function,
      }),
      invoked: [
        fns.nodeCommand,
        fns.signCertificates,
        fns.recordExpiry,
        fns.clusterStatus,
        fns.clusterCa,
      ],
    });

    new events.Rule(this, 'Schedule', {
      description: `pem-ha ${props.clusterName}: start certificate rotation`,
      // Away from the 01:00 backups: runbooks take the cluster's lock one at a time.
      schedule: props.schedule ?? events.Schedule.expression('cron(0 12 * * ? *)'),
      targets: [
        new targets.SfnStateMachine(this.stateMachine, {
          input: events.RuleTargetInput.fromObject({}),
        }),
      ],
    });

    this.expiryAlarm = new cloudwatch.Alarm(this, 'ExpiryAlarm', {
      alarmDescription: `pem-ha ${props.clusterName}: a certificate expires in fewer than ${expiryAlarmDays} days, or no rotation has reported for a day`,
      metric: this.metricDaysToExpiry(),
      threshold: expiryAlarmDays,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
  }

  /**
   * Days left on the certificate closest to expiry in the cluster (nodes and
   * CA), as published by each rotation and bootstrap. Per node and
   * certificate the same metric carries `Node` and `Certificate` dimensions.
   */
  metricDaysToExpiry(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: CERTIFICATE_METRICS.namespace,
      metricName: CERTIFICATE_METRICS.daysToExpiry,
      dimensionsMap: { service: CERTIFICATE_METRICS.service, ClusterName: this.clusterName },
      statistic: cloudwatch.Stats.MINIMUM,
      period: Duration.days(1),
      ...props,
    });
  }

  /** Rotation executions that failed, timed out or were aborted. */
  metricFailures(props?: cloudwatch.MathExpressionOptions): cloudwatch.MathExpression {
    return metricRunbookFailures(this.stateMachine, 'failed certificate rotations', props);
  }

  /** Lets `grantee` start a rotation by hand. */
  grantStartExecution(grantee: iam.IGrantable): iam.Grant {
    return this.stateMachine.grantStartExecution(grantee);
  }
}
