import type { SSMClient } from '@aws-sdk/client-ssm';
import {
  CommandRef,
  CommandTimedOutError,
  InvalidRequestError,
  pollCommand,
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

/** One poll; past the deadline a command still running is a CommandTimedOutError. */
export async function pollNodeCommand(
  ssm: SSMClient,
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
  const result = await pollCommand(ssm, command);
  if (result.state === 'running' && now() > command.deadline) {
    const when = new Date(command.deadline).toISOString();
    throw new CommandTimedOutError(
      command,
      { status: result.status, stderrTail: '' },
      `was still ${result.status} at the flow's deadline ${when}`,
    );
  }
  return result;
}
