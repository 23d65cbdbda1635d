import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ErrorName } from '../../functions/lib/errors';
import { lambdaTask, nodeField, StatePath } from './task-states';

export interface DocumentRun {
  /** Document name (a Ref in the template). */
  readonly name: string;
  /** The document step's own timeout, which bounds the poll loop. */
  readonly runTimeoutSeconds: number;
}

export interface NodeCommandProps {
  readonly nodeCommand: lambda.IFunction;
  readonly document: DocumentRun;
  /** Document parameters: literals or JsonPath strings into the state (`$.node.name`). */
  readonly parameters: Record<string, string>;
  /** @default 10 seconds */
  readonly pollInterval?: Duration;
}

/**
 * Sends a document to the node at `$.node` and polls it in a Wait/Choice
 * loop until it succeeds (the chain goes on from `<label>: done`) or a task
 * raises a named error (the poll task raises CommandTimedOutError at the
 * deadline the send task set, so the loop is bounded). The command and its
 * last poll are at `$.run` ({@link NodeCommand.COMMAND}, {@link NodeCommand.STDOUT_TAIL}).
 * States are named `<label>: send`, `: wait`, `: poll`, `: finished?`, `: done`.
 */
export class NodeCommand extends sfn.StateMachineFragment {
  /** The command's reference, as the poll and the functions that read its output take it. */
  static readonly COMMAND = `${StatePath.run}.command`;
  /** The end of the command's stdout, once it succeeded. */
  static readonly STDOUT_TAIL = `${StatePath.run}.poll.outcome.stdoutTail`;

  readonly startState: sfn.State;
  readonly endStates: sfn.INextable[];

  constructor(scope: Construct, label: string, props: NodeCommandProps) {
    super(scope, label);
    const send = lambdaTask(this, 'send', {
      lambdaFunction: props.nodeCommand,
      payload: {
        action: 'start',
        node: {
          name: sfn.JsonPath.stringAt(nodeField('name')),
          instanceId: sfn.JsonPath.stringAt(nodeField('instanceId')),
        },
        document: props.document.name,
        parameters: props.parameters,
        runTimeoutSeconds: props.document.runTimeoutSeconds,
        comment: `pem-ha ${label}`.slice(0, 100),
      },
      resultSelector: { 'command.$': '$.Payload' },
      resultPath: StatePath.run,
      retryOnServiceErrors: false,
    });
    // A new instance registers with SSM a few minutes after it boots.
    send.addRetry({
      errors: [ErrorName.NodeNotManaged],
      interval: Duration.seconds(20),
      maxAttempts: 45,
      backoffRate: 1,
    });
    const wait = new sfn.Wait(this, 'wait', {
      time: sfn.WaitTime.duration(props.pollInterval ?? Duration.seconds(10)),
    });
    const poll = lambdaTask(this, 'poll', {
      lambdaFunction: props.nodeCommand,
      payload: { action: 'poll', command: sfn.JsonPath.objectAt(NodeCommand.COMMAND) },
      resultSelector: { 'outcome.$': '$.Payload' },
      resultPath: `${StatePath.run}.poll`,
    });
    const done = new sfn.Pass(this, 'done');
    const finished = new sfn.Choice(this, 'finished?')
      .when(sfn.Condition.stringEquals(`${StatePath.run}.poll.outcome.state`, 'running'), wait)
      .otherwise(done);
    send.next(wait);
    wait.next(poll);
    poll.next(finished);
    this.startState = send;
    this.endStates = [done];
    this.prefixStates(`${label}: `);
  }
}
