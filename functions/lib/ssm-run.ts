import {
  GetCommandInvocationCommand,
  SendCommandCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { ErrorName, messageError, PemHaError } from './errors';

/** Characters of stdout/stderr kept: enough to diagnose, small enough for a Step Functions cause. */
export const TAIL_CHARS = 2000;
/** SendCommand's `TimeoutSeconds` range: how long the command may wait to be delivered and start. */
export const MIN_TIMEOUT_SECONDS = 30;
export const MAX_TIMEOUT_SECONDS = 2_592_000;
const INSTANCE_ID = /^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;
const MAX_COMMENT_CHARS = 100;

export interface CommandRequest {
  readonly instanceId: string;
  /** The cluster member's name (e.g. `etcd-1`), shown in errors and logs. */
  readonly nodeName: string;
  readonly documentName: string;
  readonly parameters?: Record<string, string[]>;
  readonly timeoutSeconds: number;
  readonly comment?: string;
  /** The step to report on: GetCommandInvocation requires it when the document has several steps. */
  readonly pluginName?: string;
}

/** Serializable handle to one command on one node (Step Functions carries it between polls). */
export type CommandRef = Pick<CommandRequest, 'instanceId' | 'nodeName' | 'pluginName'> & {
  readonly commandId: string;
  /** The runbook step that sent it (the request's comment), named in errors. */
  readonly step?: string;
};

export type PollResult =
  | { readonly state: 'running'; readonly status: string }
  | { readonly state: 'succeeded'; readonly stdoutTail: string };

/** A request is malformed; raised before any AWS call. */
export class InvalidRequestError extends messageError(ErrorName.InvalidRequest) {}

type NodeRef = Pick<CommandRef, 'nodeName' | 'instanceId' | 'step'> & {
  readonly commandId?: string;
};
/** What SSM reported of a command that did not succeed. */
export type Outcome = Pick<SsmRunError, 'status' | 'statusDetails' | 'responseCode' | 'stderrTail'>;

/** A command that did not succeed: which node, which command and what SSM reported. */
export abstract class SsmRunError extends PemHaError {
  readonly nodeName: string;
  readonly instanceId: string;
  /** Absent only when SendCommand itself was refused. */
  readonly commandId?: string;
  /** The runbook step, when the command was sent with a comment. */
  readonly step?: string;
  readonly status: string;
  readonly statusDetails?: string;
  readonly responseCode?: number;
  /** The last {@link TAIL_CHARS} characters of stderr, control characters removed. */
  readonly stderrTail: string;

  protected constructor(
    name: ErrorName,
    node: NodeRef,
    outcome: Outcome,
    what: string,
    cause?: unknown,
  ) {
    const command = node.commandId ? `command ${node.commandId} ` : '';
    const details = outcome.statusDetails ? ` (${outcome.statusDetails})` : '';
    const code = outcome.responseCode !== undefined ? `, exit code ${outcome.responseCode}` : '';
    const stderr = outcome.stderrTail ? `\n${outcome.stderrTail}` : ' (empty)';
    const step = node.step ? `${node.step}: ` : '';
    super(
      name,
      `${node.nodeName} (${node.instanceId}): ${step}${command}${what}; ` +
        `status ${outcome.status}${details}${code}; stderr tail:${stderr}`,
      cause === undefined ? undefined : { cause },
    );
    this.nodeName = node.nodeName;
    this.instanceId = node.instanceId;
    this.commandId = node.commandId;
    this.step = node.step;
    this.status = outcome.status;
    this.statusDetails = outcome.statusDetails;
    this.responseCode = outcome.responseCode;
    this.stderrTail = outcome.stderrTail;
  }
}

export class CommandFailedError extends SsmRunError {
  constructor(ref: CommandRef, outcome: Outcome) {
    super(ErrorName.CommandFailed, ref, outcome, 'failed');
  }
}

/** SSM timed the command out, or it was still running when our wait bound ran out. */
export class CommandTimedOutError extends SsmRunError {
  constructor(ref: CommandRef, outcome: Outcome, what = 'timed out in SSM') {
    super(ErrorName.CommandTimedOut, ref, outcome, what);
  }
}

export class CommandCancelledError extends SsmRunError {
  constructor(ref: CommandRef, outcome: Outcome) {
    super(ErrorName.CommandCancelled, ref, outcome, 'was cancelled');
  }
}

/**
 * The command had not succeeded and EC2 says its instance is not running
 * (stopping, stopped, shutting-down, terminated): the node went away under it.
 */
export class InstanceNotRunningError extends SsmRunError {
  /** EC2's instance state name; `terminated` when EC2 no longer knows the instance. */
  readonly instanceState: string;

  constructor(ref: CommandRef, outcome: Outcome, instanceState: string, cause?: unknown) {
    super(
      ErrorName.InstanceNotRunning,
      ref,
      outcome,
      `did not finish: the instance is ${instanceState}`,
      cause,
    );
    this.instanceState = instanceState;
  }
}

/** SendCommand said InvalidInstanceId: the node is not registered with SSM (yet). Retryable. */
export class NodeNotManagedError extends SsmRunError {
  constructor(node: NodeRef, cause: unknown) {
    const outcome = { status: 'InvalidInstanceId', stderrTail: '' };
    super(
      ErrorName.NodeNotManaged,
      node,
      outcome,
      'is not a managed node in SSM yet, nothing was sent',
      cause,
    );
  }
}

/** The last {@link TAIL_CHARS} characters, without control characters but newline and tab. */
export function tail(text: string | undefined): string {
  const kept = Array.from(text ?? '').filter((c) =>
    c >= ' ' ? c !== '\x7f' : c === '\n' || c === '\t',
  );
  return kept.slice(-TAIL_CHARS).join('');
}

/** Throws InvalidRequestError `<field> must be <allowed>; given <value>` unless `ok`. */
export function check(field: string, ok: boolean, allowed: string, value: unknown): void {
  const given = typeof value === 'string' ? JSON.stringify(value) : String(value);
  if (!ok) throw new InvalidRequestError(`${field} must be ${allowed}; given ${given}`);
}

const isText = (value: unknown): value is string =>
  typeof value === 'string' && value.trim() !== '';
const isName = (value: unknown) => isText(value) && !/\s/.test(value);
const errorName = (error: unknown) => (error as { name?: unknown } | undefined)?.name;

export function validateRequest(request: CommandRequest): void {
  const { instanceId, nodeName, documentName, timeoutSeconds: seconds, comment } = request;
  check(
    'instanceId',
    INSTANCE_ID.test(String(instanceId)),
    'i- and 8 or 17 hex digits',
    instanceId,
  );
  check('nodeName', isText(nodeName), 'a non-empty string', nodeName);
  check('documentName', isName(documentName), 'an SSM document name or ARN', documentName);
  const inRange = seconds >= MIN_TIMEOUT_SECONDS && seconds <= MAX_TIMEOUT_SECONDS;
  const range = `an integer from ${MIN_TIMEOUT_SECONDS} to ${MAX_TIMEOUT_SECONDS}`;
  check('timeoutSeconds', Number.isInteger(seconds) && inRange, range, seconds);
  for (const [key, values] of Object.entries(request.parameters ?? {})) {
    const ok = Array.isArray(values) && values.every((v) => typeof v === 'string');
    check(`parameters.${key}`, ok, 'an array of strings', JSON.stringify(values));
  }
  const shortComment =
    comment === undefined || (typeof comment === 'string' && comment.length <= MAX_COMMENT_CHARS);
  check('comment', shortComment, `at most ${MAX_COMMENT_CHARS} characters`, comment);
  const { pluginName } = request;
  check('pluginName', pluginName === undefined || isName(pluginName), 'a step name', pluginName);
}

/** Sends the document to one node; the node not being managed yet is a NodeNotManagedError. */
export async function startCommand(ssm: SSMClient, request: CommandRequest): Promise<CommandRef> {
  validateRequest(request);
  const { instanceId, nodeName, pluginName, comment: step } = request;
  const sent = await ssm
    .send(
      new SendCommandCommand({
        InstanceIds: [instanceId],
        DocumentName: request.documentName,
        Parameters: request.parameters,
        TimeoutSeconds: request.timeoutSeconds,
        Comment: request.comment,
      }),
    )
    .catch((error: unknown) => {
      if (errorName(error) !== 'InvalidInstanceId') throw error;
      throw new NodeNotManagedError({ nodeName, instanceId, step }, error);
    });
  const commandId = sent.Command?.CommandId;
  if (!commandId) throw new Error(`SendCommand for ${nodeName} (${instanceId}) gave no CommandId`);
  return {
    commandId,
    instanceId,
    nodeName,
    ...(pluginName !== undefined && { pluginName }),
    ...(step !== undefined && { step }),
  };
}

/** One GetCommandInvocation: running, succeeded, or a named error. */
export async function pollCommand(ssm: SSMClient, ref: CommandRef): Promise<PollResult> {
  const { commandId: CommandId, instanceId: InstanceId, pluginName: PluginName } = ref;
  const out = await ssm
    .send(new GetCommandInvocationCommand({ CommandId, InstanceId, PluginName }))
    .catch((error: unknown) => {
      // Eventual consistency: the invocation may not be visible right after SendCommand.
      if (errorName(error) === 'InvocationDoesNotExist') return undefined;
      throw error;
    });
  if (!out) return { state: 'running', status: 'InvocationDoesNotExist' };
  const status = out.Status ?? 'Unknown';
  // -1: the command has not started on the node (or was never delivered).
  const code =
    out.ResponseCode !== undefined && out.ResponseCode >= 0 ? out.ResponseCode : undefined;
  const outcome = {
    status,
    statusDetails: out.StatusDetails,
    responseCode: code,
    stderrTail: tail(out.StandardErrorContent),
  };
  switch (status) {
    case 'Pending':
    case 'InProgress':
    case 'Delayed':
      return { state: 'running', status };
    case 'Success':
      if (code) throw new CommandFailedError(ref, outcome);
      return { state: 'succeeded', stdoutTail: tail(out.StandardOutputContent) };
    case 'Failed':
      throw new CommandFailedError(ref, outcome);
    case 'TimedOut':
      throw new CommandTimedOutError(ref, outcome);
    case 'Cancelled':
    case 'Cancelling':
      throw new CommandCancelledError(ref, outcome);
    default:
      throw new Error(`${ref.nodeName}: command ${CommandId} has unknown status ${status}`);
  }
}

/**
 * The whole stdout of a command that succeeded (a poll keeps only a tail);
 * `what` names the command in the error when it did not succeed.
 */
export async function successfulOutput(
  ssm: SSMClient,
  ref: CommandRef,
  what: string,
): Promise<string> {
  const invocation = await ssm.send(
    new GetCommandInvocationCommand({
      CommandId: ref.commandId,
      InstanceId: ref.instanceId,
      PluginName: ref.pluginName,
    }),
  );
  if (invocation.Status !== 'Success') {
    throw new Error(`${ref.nodeName}: the ${what} command is ${invocation.Status}, not Success`);
  }
  return invocation.StandardOutputContent ?? '';
}
