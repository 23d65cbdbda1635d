import {
  type CommandInvocationStatus,
  GetCommandInvocationCommand,
  InvalidInstanceId,
  InvocationDoesNotExist,
  SendCommandCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import {
  CommandCancelledError,
  CommandFailedError,
  CommandTimedOutError,
  InvalidRequestError,
  NodeNotManagedError,
  pollCommand,
  startCommand,
  tail,
  TAIL_CHARS,
  type CommandRequest,
} from '../../functions/lib/ssm-run';

const ssm = mockClient(SSMClient);
const client = new SSMClient({ region: 'eu-west-1' });
const INSTANCE = 'i-0123456789abcdef0';
const request: CommandRequest = {
  instanceId: INSTANCE,
  nodeName: 'backend-2',
  documentName: 'PemHa-Patroni-abc123',
  parameters: { ClusterName: ['pem-ha'] },
  timeoutSeconds: 600,
  comment: 'bootstrap patroni',
};
const ref = { commandId: 'cmd-1', instanceId: INSTANCE, nodeName: 'backend-2' };

beforeEach(() => ssm.reset());

describe('startCommand', () => {
  test('Given a valid request, when it is started, then the document is sent to that one node', async () => {
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-1' } });

    const started = await startCommand(client, request);

    expect(started).toEqual({ ...ref, step: 'bootstrap patroni' });
    expect(ssm).toHaveReceivedCommandWith(SendCommandCommand, {
      InstanceIds: [INSTANCE],
      DocumentName: 'PemHa-Patroni-abc123',
      Parameters: { ClusterName: ['pem-ha'] },
      TimeoutSeconds: 600,
    });
  });

  test.each([
    [
      'instanceId',
      { instanceId: 'i-123' },
      /instanceId must be i- and 8 or 17 hex digits; given "i-123"/,
    ],
    ['nodeName', { nodeName: ' ' }, /nodeName must be a non-empty string/],
    ['documentName', { documentName: 'two words' }, /documentName must be an SSM document name/],
    [
      'timeoutSeconds',
      { timeoutSeconds: 10 },
      /timeoutSeconds must be an integer from 30 to 2592000; given 10/,
    ],
    [
      'parameters',
      { parameters: { A: 'x' as unknown as string[] } },
      /parameters.A must be an array of strings/,
    ],
    ['comment', { comment: 'c'.repeat(101) }, /comment must be at most 100 characters/],
  ])(
    'Given a bad %s, when it is started, then nothing is sent and the field is named',
    async (_field, override, message) => {
      await expect(startCommand(client, { ...request, ...override })).rejects.toThrow(message);
      await expect(startCommand(client, { ...request, ...override })).rejects.toBeInstanceOf(
        InvalidRequestError,
      );
      expect(ssm).not.toHaveReceivedCommand(SendCommandCommand);
    },
  );

  test('Given a node not yet registered with SSM, when it is started, then NodeNotManagedError names the node', async () => {
    ssm
      .on(SendCommandCommand)
      .rejects(new InvalidInstanceId({ message: 'Instances not in a valid state', $metadata: {} }));

    const error = await startCommand(client, request).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(NodeNotManagedError);
    expect(error).toMatchObject({ name: 'NodeNotManagedError', nodeName: 'backend-2' });
    expect((error as Error).message).toMatch(
      /^backend-2 \(i-0123456789abcdef0\): bootstrap patroni: is not a managed node/,
    );
  });
});

describe('pollCommand', () => {
  test('Given an invocation not visible yet, when polled, then it is still running', async () => {
    ssm
      .on(GetCommandInvocationCommand)
      .rejects(new InvocationDoesNotExist({ message: 'no such invocation', $metadata: {} }));

    await expect(pollCommand(client, ref)).resolves.toEqual({
      state: 'running',
      status: 'InvocationDoesNotExist',
    });
  });

  test.each<CommandInvocationStatus>(['Pending', 'InProgress', 'Delayed'])(
    'Given status %s, when polled, then it is still running',
    async (Status) => {
      ssm.on(GetCommandInvocationCommand).resolves({ Status, ResponseCode: -1 });
      await expect(pollCommand(client, ref)).resolves.toEqual({ state: 'running', status: Status });
    },
  );

  test('Given a success, when polled, then the stdout tail comes back', async () => {
    ssm
      .on(GetCommandInvocationCommand)
      .resolves({ Status: 'Success', ResponseCode: 0, StandardOutputContent: 'member running\n' });

    await expect(pollCommand(client, ref)).resolves.toEqual({
      state: 'succeeded',
      stdoutTail: 'member running\n',
    });
  });

  test('Given a failed script, when polled, then CommandFailedError carries node, exit code and stderr tail', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({
      Status: 'Failed',
      StatusDetails: 'Failed',
      ResponseCode: 3,
      StandardErrorContent: 'initdb: error: directory exists\n',
    });

    const error = await pollCommand(client, ref).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(CommandFailedError);
    expect(error).toMatchObject({
      name: 'CommandFailedError',
      nodeName: 'backend-2',
      instanceId: INSTANCE,
      commandId: 'cmd-1',
      responseCode: 3,
      stderrTail: 'initdb: error: directory exists\n',
    });
    expect((error as Error).message).toContain('exit code 3; stderr tail:\ninitdb: error');
  });

  test('Given a command sent by a named step, when it fails, then the error names the step', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Failed', ResponseCode: 1 });
    const error = (await pollCommand(client, { ...ref, step: 'pem-ha Install certificates' }).catch(
      (e: unknown) => e,
    )) as Error;
    expect(error).toMatchObject({ step: 'pem-ha Install certificates' });
    expect(error.message).toMatch(
      /^backend-2 \(i-0123456789abcdef0\): pem-ha Install certificates: command cmd-1 failed/,
    );
  });

  test('Given status Success with a non-zero exit code, when polled, then it is a failure', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', ResponseCode: 1 });
    await expect(pollCommand(client, ref)).rejects.toBeInstanceOf(CommandFailedError);
  });

  test.each<[CommandInvocationStatus, new (...args: never[]) => Error, string]>([
    ['TimedOut', CommandTimedOutError, 'CommandTimedOutError'],
    ['Cancelled', CommandCancelledError, 'CommandCancelledError'],
    ['Cancelling', CommandCancelledError, 'CommandCancelledError'],
  ])('Given status %s, when polled, then %p is raised', async (Status, type, name) => {
    ssm.on(GetCommandInvocationCommand).resolves({ Status, ResponseCode: -1 });
    const error = await pollCommand(client, ref).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(type);
    expect(error).toMatchObject({ name, responseCode: undefined });
  });

  test('Given several steps, when polled with a plugin name, then that step is asked for', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', ResponseCode: 0 });
    await pollCommand(client, { ...ref, pluginName: 'ConfigurePatroni' });
    expect(ssm).toHaveReceivedCommandWith(GetCommandInvocationCommand, {
      CommandId: 'cmd-1',
      InstanceId: INSTANCE,
      PluginName: 'ConfigurePatroni',
    });
  });
});

describe('tail', () => {
  test('Given long output with control characters, then the last characters are kept without them', () => {
    const text = `${'x'.repeat(TAIL_CHARS)}\x1b[31mred\x1b[0m\tend\n`;
    const kept = tail(text);
    expect(kept).toHaveLength(TAIL_CHARS);
    expect(kept.endsWith('[31mred[0m\tend\n')).toBe(true);
    expect(kept).not.toContain('\x1b');
  });
});
