import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';

/** Error names the Lambda tasks raise (functions/lib/ssm-run.ts and friends). */
export const ERRORS = {
  nodeNotManaged: 'NodeNotManagedError',
  commandFailed: 'CommandFailedError',
  commandTimedOut: 'CommandTimedOutError',
  commandCancelled: 'CommandCancelledError',
  instanceNotRunning: 'InstanceNotRunningError',
  invalidRequest: 'InvalidRequestError',
  csrRejected: 'CsrRejectedError',
} as const;

/** Every Lambda task's state timeout: the functions themselves stop at 60 s. */
export const TASK_TIMEOUT = Duration.seconds(90);

export interface DocumentRun {
  /** Document name (a Ref in the template). */
  readonly name: string;
  /** The document step's own timeout, which bounds the poll loop. */
  readonly runTimeoutSeconds: number;
}

export interface NodeCommandStatesProps {
  readonly nodeCommand: lambda.IFunction;
  readonly document: DocumentRun;
  /** Document parameters: literals or JsonPath strings into the state (`$.node.name`). */
  readonly parameters: Record<string, string>;
  /** @default 10 seconds */
  readonly pollInterval?: Duration;
  /** Where the run's command and last poll go in the state. @default '$.run' */
  readonly resultPath?: string;
}

export interface NodeCommandStates {
  readonly start: sfn.State;
  /** Reached when the command succeeded; chain the next step from it. */
  readonly end: sfn.Pass;
}

/**
 * Sends a document to the node at `$.node` and polls it in a Wait/Choice loop
 * until it succeeds (the chain goes on from `end`) or a task raises a named
 * error (the poll task raises CommandTimedOutError at the deadline the send
 * task set, so the loop is bounded). State names start with `label`.
 */
export function nodeCommandStates(
  scope: Construct,
  label: string,
  props: NodeCommandStatesProps,
): NodeCommandStates {
  const resultPath = props.resultPath ?? '$.run';
  const send = new tasks.LambdaInvoke(scope, `${label}: send`, {
    lambdaFunction: props.nodeCommand,
    payload: sfn.TaskInput.fromObject({
      action: 'start',
      node: {
        name: sfn.JsonPath.stringAt('$.node.name'),
        instanceId: sfn.JsonPath.stringAt('$.node.instanceId'),
      },
      document: props.document.name,
      parameters: props.parameters,
      runTimeoutSeconds: props.document.runTimeoutSeconds,
      comment: `pem-ha ${label}`.slice(0, 100),
    }),
    resultSelector: { 'command.$': '$.Payload' },
    resultPath,
    taskTimeout: sfn.Timeout.duration(TASK_TIMEOUT),
  });
  // A new instance registers with SSM a few minutes after it boots.
  send.addRetry({
    errors: [ERRORS.nodeNotManaged],
    interval: Duration.seconds(20),
    maxAttempts: 45,
    backoffRate: 1,
  });
  const wait = new sfn.Wait(scope, `${label}: wait`, {
    time: sfn.WaitTime.duration(props.pollInterval ?? Duration.seconds(10)),
  });
  const poll = new tasks.LambdaInvoke(scope, `${label}: poll`, {
    lambdaFunction: props.nodeCommand,
    payload: sfn.TaskInput.fromObject({
      action: 'poll',
      command: sfn.JsonPath.objectAt(`${resultPath}.command`),
    }),
    resultSelector: { 'outcome.$': '$.Payload' },
    resultPath: `${resultPath}.poll`,
    taskTimeout: sfn.Timeout.duration(TASK_TIMEOUT),
  });
  const end = new sfn.Pass(scope, `${label}: done`);
  const finished = new sfn.Choice(scope, `${label}: finished?`)
    .when(sfn.Condition.stringEquals(`${resultPath}.poll.outcome.state`, 'running'), wait)
    .otherwise(end);
  send.next(wait);
  wait.next(poll);
  poll.next(finished);
  return { start: send, end };
}
