import { DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { CancelCommandCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { logger } from '../lib/logger';
import {
  CommandRef,
  CommandTimedOutError,
  InstanceNotRunningError,
  InvalidRequestError,
  type Outcome,
  pollCommand,
  type PollResult,
  SsmRunError,
  startCommand,
} from '../lib/ssm-run';

/**
 * Seconds SSM may take to deliver a command to a node that is busy or
 * reconnecting (SendCommand's TimeoutSeconds); the document's own step
 * timeout bounds its run once it started.
 */
export const DELIVERY_TIMEOUT_SECONDS = 600;
/** Slack after the latest moment SSM itself would report a result. */
const DEADLINE_SLACK_SECONDS = 60;
/** EC2 instance states in which a command can still run (or be delivered). */
const RUNNING_STATES: ReadonlySet<string> = new Set(['pending', 'running']);
/** SSM statuses of a command that ended without succeeding; the instance may be why. */
const UNFINISHED_STATUSES: ReadonlySet<string> = new Set([
  'Failed',
  'TimedOut',
  'Cancelled',
  'Cancelling',
]);

export interface NodeRef {
  readonly name: string;
  readonly instanceId: string;
}

export interface StartEvent {
  readonly action: 'start';
  readonly node: NodeRef;
  readonly document: string;
  /** Document parameters; each becomes SSM's one-element list. */
  readonly parameters?: Record<string, string>;
  /** The document step's own timeout: with delivery, it sets the deadline. */
  readonly runTimeoutSeconds: number;
  readonly comment?: string;
}

/** A started command as Step Functions carries it between polls. */
export type TrackedCommand = CommandRef & {
  /** Epoch milliseconds after which polling gives up. */
  readonly deadline: number;
};

export interface PollEvent {
  readonly action: 'poll';
  readonly command: TrackedCommand;
}

export type PollOutcome =
  | { readonly state: 'running'; readonly status: string }
  | { readonly state: 'succeeded'; readonly stdoutTail: string };

function describe(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}

function requireField(ok: boolean, field: string, allowed: string, value: unknown): void {
  if (!ok) throw new InvalidRequestError(`${field} must be ${allowed}; given ${describe(value)}`);
}

export async function startNodeCommand(
  ssm: SSMClient,
  event: StartEvent,
  now: () => number = Date.now,
): Promise<TrackedCommand> {
  const { node, parameters = {}, runTimeoutSeconds } = event;
  requireField(typeof node === 'object' && node !== null, 'node', 'an object', node);
  requireField(
    Number.isInteger(runTimeoutSeconds) && runTimeoutSeconds > 0,
    'runTimeoutSeconds',
    'a positive integer',
    runTimeoutSeconds,
  );
  for (const [key, value] of Object.entries(parameters)) {
    requireField(typeof value === 'string', `parameters.${key}`, 'a string', value);
  }
  const ref = await startCommand(ssm, {
    instanceId: node.instanceId,
    nodeName: node.name,
    documentName: event.document,
    parameters: Object.fromEntries(Object.entries(parameters).map(([k, v]) => [k, [v]])),
    timeoutSeconds: DELIVERY_TIMEOUT_SECONDS,
    comment: event.comment,
  });
  const seconds = DELIVERY_TIMEOUT_SECONDS + runTimeoutSeconds + DEADLINE_SLACK_SECONDS;
  return { ...ref, deadline: now() + seconds * 1000 };
}

/**
 * EC2's state name for one instance: `terminated` when EC2 no longer knows it,
 * undefined when its answer leaves the instance out; other errors propagate.
 */
export async function instanceState(
  ec2: EC2Client,
  instanceId: string,
): Promise<string | undefined> {
  const answer = await ec2
    .send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))
    .catch((error: unknown) => {
      if ((error as { name?: unknown } | undefined)?.name !== 'InvalidInstanceID.NotFound') {
        throw error;
      }
      return 'gone' as const;
    });
  if (answer === 'gone') return 'terminated';
  const instance = (answer.Reservations ?? [])
    .flatMap((reservation) => reservation.Instances ?? [])
    .find((described) => described.InstanceId === instanceId);
  return instance?.State?.Name;
}

/**
 * The InstanceNotRunningError to raise instead of the command's own outcome
 * when EC2 says the instance is not running; undefined when it runs, or when
 * EC2 cannot tell (then the command's outcome stands, with a warning).
 */
async function notRunningError(
  ec2: EC2Client,
  command: TrackedCommand,
  outcome: Outcome,
  cause?: unknown,
): Promise<InstanceNotRunningError | undefined> {
  const context = {
    node: command.nodeName,
    instanceId: command.instanceId,
    commandId: command.commandId,
    status: outcome.status,
  };
  let state: string | undefined;
  try {
    state = await instanceState(ec2, command.instanceId);
  } catch (error) {
    logger.warn('cannot read the instance state; reporting the command as SSM does', {
      ...context,
      error,
    });
    return undefined;
  }
  if (state === undefined) {
    logger.warn('EC2 did not describe the instance; reporting the command as SSM does', context);
    return undefined;
  }
  return RUNNING_STATES.has(state)
    ? undefined
    : new InstanceNotRunningError(command, outcome, state, cause);
}

/**
 * One poll. A command not finished (still running, or failed, timed out or
 * cancelled) on an instance EC2 says is not running is an
 * InstanceNotRunningError; otherwise, past the deadline a command still running
 * is a CommandTimedOutError.
 */
export async function pollNodeCommand(
  ssm: SSMClient,
  ec2: EC2Client,
  event: PollEvent,
  now: () => number = Date.now,
): Promise<PollOutcome> {
  const { command } = event;
  requireField(
    typeof command === 'object' && command !== null && Number.isFinite(command.deadline),
    'command',
    'the object the start action returned',
    command,
  );
  let result: PollResult;
  try {
    result = await pollCommand(ssm, command);
  } catch (error) {
    if (error instanceof SsmRunError && UNFINISHED_STATUSES.has(error.status)) {
      throw (await notRunningError(ec2, command, error, error)) ?? error;
    }
    throw error;
  }
  if (result.state === 'succeeded') return result;
  const outcome = { status: result.status, stderrTail: '' };
  const notRunning = await notRunningError(ec2, command, outcome);
  if (notRunning) {
    await abandon(ssm, command);
    throw notRunning;
  }
  if (now() > command.deadline) {
    await abandon(ssm, command);
    const when = new Date(command.deadline).toISOString();
    throw new CommandTimedOutError(
      command,
      outcome,
      `was still ${result.status} at the flow's deadline ${when}`,
    );
  }
  return result;
}

/**
 * Cancels a command the runbook gives up on, so a node that comes back (or
 * whose link returns) within SSM's delivery window does not run it after the
 * run has moved on or halted. Best effort: a failure is logged, not raised.
 */
async function abandon(ssm: SSMClient, command: TrackedCommand): Promise<void> {
  try {
    await ssm.send(
      new CancelCommandCommand({ CommandId: command.commandId, InstanceIds: [command.instanceId] }),
    );
    logger.warn('command cancelled: the runbook gave up on it', {
      node: command.nodeName,
      commandId: command.commandId,
    });
  } catch (error) {
    logger.warn('could not cancel a command the runbook gave up on', {
      node: command.nodeName,
      commandId: command.commandId,
      error,
    });
  }
}
