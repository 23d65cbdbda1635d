/**
 * Step Functions executions as the rig runs them (aws-local-stepfunctions in
 * this process): the runner records each one here, and ListExecutions
 * (AWS JSON 1.0) reports them, so a task can find its own execution running.
 */
import { randomUUID } from 'node:crypto';
import { AwsError } from './ssm';

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

/** What a runbook runner tells Step Functions about its executions. */
export interface ExecutionRecorder {
  /** Records a new execution as RUNNING; returns its ARN (`…:execution:<machine name>:<name>`). */
  start(stateMachineArn: string, name?: string): string;
  /** Records how an execution ended. */
  stop(executionArn: string, status: Exclude<ExecutionStatus, 'RUNNING'>): void;
}

interface Execution {
  readonly executionArn: string;
  readonly stateMachineArn: string;
  readonly name: string;
  status: ExecutionStatus;
  readonly startDate: Date;
  stopDate?: Date;
}

const STATE_MACHINE_ARN = /^arn:([^:]+):states:([^:]*):([^:]*):stateMachine:([^:]+)$/;

export class LocalExecutions implements ExecutionRecorder {
  private readonly executions: Execution[] = [];

  start(stateMachineArn: string, name: string = randomUUID()): string {
    const [, partition, region, account, machine] = parseStateMachineArn(stateMachineArn);
    const executionArn = `arn:${partition}:states:${region}:${account}:execution:${machine}:${name}`;
    if (this.executions.some((e) => e.executionArn === executionArn))
      throw new AwsError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
    this.executions.push({
      executionArn,
      stateMachineArn,
      name,
      status: 'RUNNING',
      startDate: new Date(),
    });
    return executionArn;
  }

  stop(executionArn: string, status: Exclude<ExecutionStatus, 'RUNNING'>): void {
    const execution = this.executions.find((e) => e.executionArn === executionArn);
    if (!execution) throw new Error(`no execution ${executionArn} was started`);
    execution.status = status;
    execution.stopDate = new Date();
  }

  /** ListExecutions: newest first, optionally of one status (no paging: the rig runs few). */
  listExecutions(input: { stateMachineArn?: unknown; statusFilter?: unknown }): unknown {
    if (typeof input.stateMachineArn !== 'string')
      throw new AwsError('ValidationException', 'stateMachineArn is required on the rig');
    parseStateMachineArn(input.stateMachineArn);
    const executions = this.executions
      .filter((e) => e.stateMachineArn === input.stateMachineArn)
      .filter((e) => input.statusFilter === undefined || e.status === input.statusFilter)
      .reverse();
    return {
      executions: executions.map((e) => ({
        executionArn: e.executionArn,
        stateMachineArn: e.stateMachineArn,
        name: e.name,
        status: e.status,
        startDate: e.startDate.getTime() / 1000,
        ...(e.stopDate && { stopDate: e.stopDate.getTime() / 1000 }),
      })),
    };
  }
}

function parseStateMachineArn(arn: string): RegExpExecArray {
  const match = STATE_MACHINE_ARN.exec(arn);
  if (!match)
    throw new AwsError(
      'InvalidArn',
      `Invalid Arn: 'Resource type not valid in this context: ${arn}'`,
    );
  return match;
}
