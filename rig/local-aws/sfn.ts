/**
 * Step Functions executions as the rig runs them (aws-local-stepfunctions in
 * the process that started them): the runner records each one here, and
 * DescribeExecution (AWS JSON 1.0) reports them, so the runbook lock can ask
 * whether its holder still runs. With a file, every process of one rig
 * records into and reads from the same journal, as one Step Functions
 * account would.
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
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
  /** The process running it: when it is gone without a stop, the execution was aborted. */
  readonly pid: number;
}

/** One line of the journal: an execution started, or how one ended. */
type JournalEntry =
  | {
      readonly event: 'start';
      readonly execution: Omit<Execution, 'startDate'> & { startDate: number };
    }
  | {
      readonly event: 'stop';
      readonly executionArn: string;
      readonly status: ExecutionStatus;
      readonly stopDate: number;
    };

const processAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const STATE_MACHINE_ARN = /^arn:([^:]+):states:([^:]*):([^:]*):stateMachine:([^:]+)$/;

export class LocalExecutions implements ExecutionRecorder {
  private readonly memory: JournalEntry[] = [];

  /** @param journal a file shared by every process of one rig; none: this process only. */
  constructor(private readonly journal?: string) {}

  start(stateMachineArn: string, name: string = randomUUID()): string {
    const [, partition, region, account, machine] = parseStateMachineArn(stateMachineArn);
    const executionArn = `arn:${partition}:states:${region}:${account}:execution:${machine}:${name}`;
    if (this.executions().some((e) => e.executionArn === executionArn))
      throw new AwsError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
    const execution = { executionArn, stateMachineArn, name, status: 'RUNNING' as const };
    this.record({
      event: 'start',
      execution: { ...execution, startDate: Date.now(), pid: process.pid },
    });
    return executionArn;
  }

  stop(executionArn: string, status: Exclude<ExecutionStatus, 'RUNNING'>): void {
    if (!this.executions().some((e) => e.executionArn === executionArn))
      throw new Error(`no execution ${executionArn} was started`);
    this.record({ event: 'stop', executionArn, status, stopDate: Date.now() });
  }

  /** One line appended at once: several processes may record into one journal. */
  private record(entry: JournalEntry): void {
    if (this.journal) appendFileSync(this.journal, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
    else this.memory.push(entry);
  }

  /** Every execution, oldest first, as the journal (or this process) recorded them. */
  list(): Execution[] {
    return this.executions();
  }

  private executions(): Execution[] {
    const entries = this.journal
      ? existsSync(this.journal)
        ? readFileSync(this.journal, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((line) => JSON.parse(line) as JournalEntry)
        : []
      : this.memory;
    const byArn = new Map<string, Execution>();
    for (const entry of entries) {
      if (entry.event === 'start') {
        const { startDate, ...rest } = entry.execution;
        byArn.set(rest.executionArn, { ...rest, startDate: new Date(startDate) });
      } else {
        const execution = byArn.get(entry.executionArn);
        if (execution) {
          execution.status = entry.status;
          execution.stopDate = new Date(entry.stopDate);
        }
      }
    }
    for (const execution of byArn.values()) {
      if (execution.status === 'RUNNING' && !processAlive(execution.pid)) {
        execution.status = 'ABORTED';
      }
    }
    return [...byArn.values()];
  }

  /** DescribeExecution: what the runbook lock asks of the execution holding it. */
  describeExecution(input: { executionArn?: unknown }): unknown {
    const execution = this.executions().find((e) => e.executionArn === input.executionArn);
    if (!execution)
      throw new AwsError(
        'ExecutionDoesNotExist',
        `Execution Does Not Exist: '${String(input.executionArn)}'`,
      );
    return {
      executionArn: execution.executionArn,
      stateMachineArn: execution.stateMachineArn,
      name: execution.name,
      status: execution.status,
      startDate: execution.startDate.getTime() / 1000,
      ...(execution.stopDate && { stopDate: execution.stopDate.getTime() / 1000 }),
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
