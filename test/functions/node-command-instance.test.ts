import {
  DescribeInstancesCommand,
  EC2Client,
  EC2ServiceException,
  type InstanceStateName,
} from '@aws-sdk/client-ec2';
import {
  CancelCommandCommand,
  type CommandInvocationStatus,
  GetCommandInvocationCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { pollNodeCommand, type TrackedCommand } from '../../functions/node-command/command';
import { handler } from '../../functions/node-command/handler';
import { logger } from '../../functions/lib/logger';
import {
  CommandFailedError,
  CommandTimedOutError,
  InstanceNotRunningError,
} from '../../functions/lib/ssm-run';

const ssm = mockClient(SSMClient);
const ec2 = mockClient(EC2Client);
const ssmClient = new SSMClient({ region: 'eu-west-1' });
const ec2Client = new EC2Client({ region: 'eu-west-1' });
const INSTANCE = 'i-0abc0123456789def';
const NOW = 1_800_000_000_000;
const command: TrackedCommand = {
  commandId: 'cmd-7',
  instanceId: INSTANCE,
  nodeName: 'backend-2',
  step: 'pem-ha Start Patroni replica',
  deadline: NOW + 60_000,
};

const instanceIn = (state: InstanceStateName) => ({
  Reservations: [{ Instances: [{ InstanceId: INSTANCE, State: { Name: state } }] }],
});
const ec2Error = (name: string, message: string) =>
  new EC2ServiceException({ name, message, $fault: 'client', $metadata: {} });
const invocation = (Status: CommandInvocationStatus, stderr = '') =>
  ssm.on(GetCommandInvocationCommand).resolves({
    Status,
    StatusDetails: Status,
    ResponseCode: Status === 'Failed' ? 1 : -1,
    StandardErrorContent: stderr,
  });
const poll = (at = NOW) =>
  pollNodeCommand(ssmClient, ec2Client, { action: 'poll', command }, () => at);
/** The error a poll raises (a poll that answers fails the test). */
const failure = async (at = NOW): Promise<Error> => {
  const outcome = await poll(at).catch((error: unknown) => error as Error);
  if (!(outcome instanceof Error)) throw new Error(`the poll answered ${JSON.stringify(outcome)}`);
  return outcome;
};

beforeEach(() => {
  ssm.reset();
  ec2.reset();
  jest.restoreAllMocks();
});

describe('node command poll when the instance stopped under it', () => {
  test('Given a command InProgress on a stopped instance, when polled, then InstanceNotRunningError names the node, the step and the state', async () => {
    invocation('InProgress');
    ec2.on(DescribeInstancesCommand).resolves(instanceIn('stopped'));

    const error = await failure();

    expect(error).toBeInstanceOf(InstanceNotRunningError);
    expect(error).toMatchObject({
      name: 'InstanceNotRunningError',
      nodeName: 'backend-2',
      instanceId: INSTANCE,
      commandId: 'cmd-7',
      instanceState: 'stopped',
      status: 'InProgress',
    });
    expect(error.message).toBe(
      `backend-2 (${INSTANCE}): pem-ha Start Patroni replica: command cmd-7 did not finish: ` +
        'the instance is stopped; status InProgress; stderr tail: (empty)',
    );
    expect(ec2).toHaveReceivedCommandWith(DescribeInstancesCommand, { InstanceIds: [INSTANCE] });
  });

  test('Given an instance EC2 no longer knows, when polled, then InstanceNotRunningError says terminated', async () => {
    invocation('Pending');
    ec2
      .on(DescribeInstancesCommand)
      .rejects(
        ec2Error('InvalidInstanceID.NotFound', `The instance ID '${INSTANCE}' does not exist`),
      );

    const error = await failure();

    expect(error).toMatchObject({ name: 'InstanceNotRunningError', instanceState: 'terminated' });
    expect(error.message).toContain('did not finish: the instance is terminated; status Pending');
  });

  test.each<InstanceStateName>(['stopping', 'shutting-down', 'terminated'])(
    'Given a command that Failed on an instance %s, when polled, then InstanceNotRunningError wins and keeps the stderr tail',
    async (state) => {
      invocation('Failed', 'patroni: terminated by signal\n');
      ec2.on(DescribeInstancesCommand).resolves(instanceIn(state));

      const error = await failure();

      expect(error).toMatchObject({ name: 'InstanceNotRunningError', instanceState: state });
      expect(error.cause).toBeInstanceOf(CommandFailedError);
      expect(error.message).toContain(
        `the instance is ${state}; status Failed (Failed), exit code 1; stderr tail:\npatroni: terminated`,
      );
    },
  );

  test("Given a command still running past the flow's deadline on a stopped instance, then InstanceNotRunningError wins over the timeout", async () => {
    invocation('InProgress');
    ec2.on(DescribeInstancesCommand).resolves(instanceIn('stopped'));

    const error = await failure(command.deadline + 1);

    expect(error).toMatchObject({ name: 'InstanceNotRunningError', instanceState: 'stopped' });
  });

  test('Given a command that Failed on a running instance, when polled, then CommandFailedError as before', async () => {
    invocation('Failed', 'initdb: error\n');
    ec2.on(DescribeInstancesCommand).resolves(instanceIn('running'));

    const error = await failure();

    expect(error).toBeInstanceOf(CommandFailedError);
    expect(error).toMatchObject({ name: 'CommandFailedError', nodeName: 'backend-2' });
  });

  test.each<InstanceStateName>(['running', 'pending'])(
    'Given a command InProgress on an instance %s, when polled, then it is still running',
    async (state) => {
      invocation('InProgress');
      ec2.on(DescribeInstancesCommand).resolves(instanceIn(state));

      await expect(poll()).resolves.toEqual({ state: 'running', status: 'InProgress' });
    },
  );

  test('Given a command that succeeded, when polled, then EC2 is never asked', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', ResponseCode: 0 });

    await expect(poll()).resolves.toEqual({ state: 'succeeded', stdoutTail: '' });

    expect(ec2).not.toHaveReceivedCommand(DescribeInstancesCommand);
  });

  test('Given EC2 denies DescribeInstances, when a failed command is polled, then CommandFailedError is kept and a warning logged', async () => {
    invocation('Failed');
    ec2
      .on(DescribeInstancesCommand)
      .rejects(ec2Error('UnauthorizedOperation', 'You are not authorized'));
    const warn = jest.spyOn(logger, 'warn').mockImplementation(() => undefined);

    const error = await failure();

    expect(error).toBeInstanceOf(CommandFailedError);
    expect(warn).toHaveBeenCalledWith(
      expect.stringContaining('cannot read the instance state'),
      expect.objectContaining({ node: 'backend-2', instanceId: INSTANCE, commandId: 'cmd-7' }),
    );
  });

  test("Given EC2 throttles, when a command still running is polled past the flow's deadline, then CommandTimedOutError is kept", async () => {
    invocation('InProgress');
    ec2.on(DescribeInstancesCommand).rejects(ec2Error('RequestLimitExceeded', 'Rate exceeded'));
    jest.spyOn(logger, 'warn').mockImplementation(() => undefined);

    const error = await failure(command.deadline + 1);

    expect(error).toBeInstanceOf(CommandTimedOutError);
    expect(error.message).toContain("was still InProgress at the flow's deadline");
  });

  test('Given a stopped instance, when the handler polls, then the error keeps its name for Retry/Catch', async () => {
    invocation('InProgress');
    ec2.on(DescribeInstancesCommand).resolves(instanceIn('stopped'));

    await expect(handler({ action: 'poll', command })).rejects.toMatchObject({
      name: 'InstanceNotRunningError',
      instanceState: 'stopped',
    });
  });
});

describe('a command the runbook gives up on is cancelled, so it never runs late', () => {
  test('Given a command Pending on a stopped instance, when polled, then it is cancelled on that instance before InstanceNotRunningError', async () => {
    invocation('Pending');
    ec2.on(DescribeInstancesCommand).resolves(instanceIn('stopped'));

    expect(await failure()).toBeInstanceOf(InstanceNotRunningError);
    expect(ssm).toHaveReceivedCommandWith(CancelCommandCommand, {
      CommandId: 'cmd-7',
      InstanceIds: [INSTANCE],
    });
  });

  test("Given a command still Pending past the flow's deadline on a running instance (its link cut), then it is cancelled and the poll is a CommandTimedOutError", async () => {
    invocation('Pending');
    ec2.on(DescribeInstancesCommand).resolves(instanceIn('running'));

    expect(await failure(command.deadline + 1)).toBeInstanceOf(CommandTimedOutError);
    expect(ssm).toHaveReceivedCommandTimes(CancelCommandCommand, 1);
  });

  test('Given SSM refuses the cancel, then the poll still raises the error it found', async () => {
    invocation('InProgress');
    ec2.on(DescribeInstancesCommand).resolves(instanceIn('stopped'));
    ssm.on(CancelCommandCommand).rejects(new Error('AccessDeniedException'));
    jest.spyOn(logger, 'warn').mockImplementation(() => undefined);

    expect(await failure()).toBeInstanceOf(InstanceNotRunningError);
  });

  test('Given a command still running before the deadline on a running instance, then nothing is cancelled', async () => {
    invocation('InProgress');
    ec2.on(DescribeInstancesCommand).resolves(instanceIn('running'));

    expect(await poll()).toEqual({ state: 'running', status: 'InProgress' });
    expect(ssm).not.toHaveReceivedCommand(CancelCommandCommand);
  });
});
