import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { acknowledge, Finding, functionVersions } from './nag';
import type { RunbookLockUse } from './runbook-lock';
import type { TaskFunction } from './task-function';
import { lambdaTask } from '../workflows/task-states';
import type { CheckedRunbook } from '../../functions/lib/runbook-inputs';

export interface RunbookStateMachineProps {
  readonly comment: string;
  readonly definition: sfn.IChainable;
  /** The task functions the runbook invokes (their versions are acknowledged for cdk-nag). */
  readonly invoked: readonly TaskFunction[];
  /** @default 6 hours */
  readonly timeout?: Duration;
  /** A fixed name, for policies that must name the state machine before it exists. */
  readonly stateMachineName?: string;
  /**
   * Where its execution events go.
   * @default - a new log group `<id>Logs` beside the state machine, kept for a year
   */
  readonly logGroup?: logs.ILogGroup;
  /**
   * The cluster's runbook lock, taken in the first state: a run that finds it
   * held ends at once with RunbookAlreadyRunningError, touching nothing.
   * @default - not guarded (read-only runbooks)
   */
  readonly lock?: RunbookLockUse;
  /**
   * The execution input, checked in the very first state (before the lock)
   * by the check-input function against the runbook's rules in
   * functions/lib/runbook-inputs.ts: an unknown field or a bad value ends
   * the run with InvalidInputError, having touched nothing.
   * @default - the runbook's own first task checks it (upgrade, failover, restore, replacement)
   */
  readonly input?: RunbookInputCheck;
}

export interface RunbookInputCheck {
  readonly check: TaskFunction;
  readonly runbook: CheckedRunbook;
}

/**
 * A runbook's state machine: traced, every event logged for a year without
 * execution data (state holds names, ids and certificates, never secrets),
 * with an alarm on any execution that fails, times out or is aborted.
 */
export function runbookStateMachine(
  scope: Construct,
  id: string,
  props: RunbookStateMachineProps,
): sfn.StateMachine {
  const timeout = props.timeout ?? Duration.hours(6);
  const { lock, input } = props;
  // Each in its own scope: two runbooks of one construct each have these states.
  const first = [
    ...(input ? [checkInputState(new Construct(scope, `${id}Input`), input)] : []),
    ...(lock
      ? [lock.lock.acquireState(new Construct(scope, `${id}Lock`), lock.runbook, timeout)]
      : []),
  ];
  const definition = first.length
    ? first.reduceRight<sfn.IChainable>((next, state) => state.next(next), props.definition)
    : props.definition;
  const stateMachine = new sfn.StateMachine(scope, id, {
    comment: props.comment,
    stateMachineName: props.stateMachineName,
    definitionBody: sfn.DefinitionBody.fromChainable(definition),
    timeout,
    tracingEnabled: true,
    logs: {
      destination:
        props.logGroup ??
        new logs.LogGroup(scope, `${id}Logs`, { retention: logs.RetentionDays.ONE_YEAR }),
      level: sfn.LogLevel.ALL,
      includeExecutionData: false,
    },
  });
  lock?.lock.guard(stateMachine);
  new cloudwatch.Alarm(scope, `${id}FailedAlarm`, {
    alarmDescription: `${props.comment}: an execution failed, timed out or was aborted. Its error names the step and the cause (Step Functions console, or the runbook's log group).`,
    metric: metricRunbookFailures(stateMachine, 'failed, timed out or aborted executions'),
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: 1,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  acknowledge(stateMachine.role, [
    ['Resource::*', 'X-Ray PutTraceSegments and PutTelemetryRecords take no resource ARN.'],
    ...[
      ...props.invoked,
      ...(lock ? [lock.lock.function] : []),
      ...(input ? [input.check] : []),
    ].map((fn): Finding => [
      functionVersions(fn),
      'The runbook may invoke any version of its own task functions.',
    ]),
  ]);
  return stateMachine;
}

/**
 * A runbook's executions that failed, timed out or were aborted (per minute
 * by default). `idSuffix` keeps the metric ids apart when one graph shows
 * several runbooks.
 */
export function metricRunbookFailures(
  stateMachine: sfn.StateMachine,
  label: string,
  props?: cloudwatch.MathExpressionOptions,
  idSuffix = '',
): cloudwatch.MathExpression {
  const period = props?.period ?? Duration.minutes(1);
  const [failed, timedOut, aborted] = ['failed', 'timedOut', 'aborted'].map((id) => id + idSuffix);
  return new cloudwatch.MathExpression({
    expression: `FILL(${failed}, 0) + FILL(${timedOut}, 0) + FILL(${aborted}, 0)`,
    usingMetrics: {
      [failed]: stateMachine.metricFailed({ period, statistic: cloudwatch.Stats.SUM }),
      [timedOut]: stateMachine.metricTimedOut({ period, statistic: cloudwatch.Stats.SUM }),
      [aborted]: stateMachine.metricAborted({ period, statistic: cloudwatch.Stats.SUM }),
    },
    label,
    ...props,
    period,
  });
}

/** `Check input`: the check-input function over the execution's input, as given. */
function checkInputState(scope: Construct, input: RunbookInputCheck): sfn.TaskStateBase {
  return lambdaTask(scope, 'Check input', {
    lambdaFunction: input.check.function,
    payload: { runbook: input.runbook, input: sfn.JsonPath.objectAt('$') },
    resultPath: sfn.JsonPath.DISCARD,
  });
}
