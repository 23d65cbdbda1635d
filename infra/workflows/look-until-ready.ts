import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { lambdaTask } from './task-states';

/** Where a look loop keeps its last answer: `{ ready, deadline, detail }`. */
const LOOK = '$.look';

export interface LookUntilReadyProps {
  readonly lambdaFunction: lambda.IFunction;
  /** The look's payload; the loop adds `deadline` (0 on the first look: the function sets it). */
  readonly payload: Record<string, unknown>;
  /** @default 5 seconds */
  readonly interval?: Duration;
}

/**
 * A Wait/Choice loop over one look until it answers `ready`; the function
 * fails the look with a named error once the deadline it set has passed.
 * States are named `<label>: start`, `: look`, `: ready?`, `: wait`, `: done`.
 */
export class LookUntilReady extends sfn.StateMachineFragment {
  readonly startState: sfn.State;
  readonly endStates: sfn.INextable[];

  constructor(scope: Construct, label: string, props: LookUntilReadyProps) {
    super(scope, label);
    const start = new sfn.Pass(this, 'start', {
      result: sfn.Result.fromObject({ ready: false, deadline: 0 }),
      resultPath: LOOK,
    });
    const look = lambdaTask(this, 'look', {
      lambdaFunction: props.lambdaFunction,
      payload: { ...props.payload, deadline: sfn.JsonPath.numberAt(`${LOOK}.deadline`) },
      resultSelector: {
        'ready.$': '$.Payload.ready',
        'deadline.$': '$.Payload.deadline',
        'detail.$': '$.Payload.detail',
      },
      resultPath: LOOK,
    });
    const done = new sfn.Pass(this, 'done');
    const wait = new sfn.Wait(this, 'wait', {
      time: sfn.WaitTime.duration(props.interval ?? Duration.seconds(5)),
    });
    start.next(look);
    look.next(
      new sfn.Choice(this, 'ready?')
        .when(sfn.Condition.booleanEquals(`${LOOK}.ready`, true), done)
        .otherwise(wait),
    );
    wait.next(look);
    this.startState = start;
    this.endStates = [done];
    this.prefixStates(`${label}: `);
  }
}
