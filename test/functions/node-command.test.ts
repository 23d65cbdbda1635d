import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetCommandInvocationCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { DescribeExecutionCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type { CdkCustomResourceEvent, CdkCustomResourceIsCompleteEvent } from 'aws-lambda';
import {
  DELIVERY_TIMEOUT_SECONDS,
  pollNodeCommand,
  startNodeCommand,
} from '../../functions/node-command/command';
import { handler } from '../../functions/node-command/handler';
import { isComplete, onEvent } from '../../functions/bootstrap-trigger/trigger';

const ssm = mockClient(SSMClient);
const sfn = mockClient(SFNClient);
const ec2 = mockClient(EC2Client);
const ssmClient = new SSMClient({ region: 'eu-west-1' });
const ec2Client = new EC2Client({ region: 'eu-west-1' });
const sfnClient = new SFNClient({ region: 'eu-west-1' });
const node = { name: 'etcd-1', instanceId: 'i-0123456789abcdef0' };
const NOW = 1_800_000_000_000;
const instanceIn = (state: 'running') => ({
  Reservations: [{ Instances: [{ InstanceId: node.instanceId, State: { Name: state } }] }],
});

beforeEach(() => {
  ssm.reset();
  sfn.reset();
  ec2.reset();
  // EC2 sees the node running unless a test says otherwise.
  ec2.on(DescribeInstancesCommand).resolves(instanceIn('running'));
});

describe('node command task', () => {
  test('Given a start, then string parameters become SSM lists and the deadline covers delivery and the run', async () => {
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-1' } });

    const command = await startNodeCommand(
      ssmClient,
      {
        action: 'start',
        node,
        document: 'pem-ha-etcd',
        parameters: { MemberName: 'etcd-1' },
        runTimeoutSeconds: 900,
      },
      () => NOW,
    );

    expect(ssm).toHaveReceivedCommandWith(SendCommandCommand, {
      DocumentName: 'pem-ha-etcd',
      Parameters: { MemberName: ['etcd-1'] },
      TimeoutSeconds: DELIVERY_TIMEOUT_SECONDS,
    });
    expect(command).toEqual({
      commandId: 'cmd-1',
      instanceId: node.instanceId,
      nodeName: 'etcd-1',
      deadline: NOW + (600 + 900 + 60) * 1000,
    });
  });

  test('Given a command still running past its deadline on a running node, when polled, then CommandTimedOutError names the node', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'InProgress', ResponseCode: -1 });
    const command = {
      commandId: 'cmd-1',
      instanceId: node.instanceId,
      nodeName: 'etcd-1',
      deadline: NOW,
    };

    await expect(
      pollNodeCommand(ssmClient, ec2Client, { action: 'poll', command }, () => NOW + 1),
    ).rejects.toMatchObject({
      name: 'CommandTimedOutError',
      nodeName: 'etcd-1',
    });
    await expect(
      pollNodeCommand(ssmClient, ec2Client, { action: 'poll', command }, () => NOW - 1),
    ).resolves.toEqual({ state: 'running', status: 'InProgress' });
  });

  test('Given an unknown action, then the handler refuses it by name', async () => {
    await expect(handler({ action: 'stop' } as never)).rejects.toMatchObject({
      name: 'InvalidRequestError',
      message: 'action must be start or poll; given "stop"',
    });
  });

  test('Given a non-string parameter, then nothing is sent', async () => {
    await expect(
      startNodeCommand(ssmClient, {
        action: 'start',
        node,
        document: 'd',
        parameters: { AgentId: 4 as unknown as string },
        runTimeoutSeconds: 60,
      }),
    ).rejects.toThrow('parameters.AgentId must be a string; given 4');
    expect(ssm).not.toHaveReceivedCommand(SendCommandCommand);
  });
});

describe('bootstrap on deploy (custom resource)', () => {
  const base = {
    ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:provider',
    ResponseURL: 'https://cloudformation-custom-resource-response.example/',
    StackId: 'arn:aws:cloudformation:eu-west-1:123456789012:stack/PemHa/guid',
    RequestId: 'c0ffee00-1111-2222-3333-444455556666',
    LogicalResourceId: 'BootstrapRun',
    ResourceType: 'Custom::PemHaBootstrap',
    ResourceProperties: {
      ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:provider',
      StateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:Bootstrap',
    },
  };
  const executionArn = 'arn:aws:states:eu-west-1:123456789012:execution:Bootstrap:deploy-1';

  test('Given a create, then one execution named after the request starts', async () => {
    sfn.on(StartExecutionCommand).resolves({ executionArn, startDate: new Date() });
    const response = await onEvent(
      { ...base, RequestType: 'Create' } as CdkCustomResourceEvent,
      sfnClient,
    );
    expect(response).toEqual({
      PhysicalResourceId: 'pem-ha-bootstrap',
      Data: { ExecutionArn: executionArn },
    });
    expect(sfn).toHaveReceivedCommandWith(StartExecutionCommand, {
      name: 'deploy-c0ffee00-1111-2222-3333-444455556666',
      input: '{}',
    });
  });

  test('Given a delete, then the nodes are left alone', async () => {
    const response = await onEvent(
      {
        ...base,
        RequestType: 'Delete',
        PhysicalResourceId: 'pem-ha-bootstrap',
      } as CdkCustomResourceEvent,
      sfnClient,
    );
    expect(response).toEqual({ PhysicalResourceId: 'pem-ha-bootstrap' });
    expect(sfn).not.toHaveReceivedCommand(StartExecutionCommand);
  });

  test('Given a failed execution, then the deploy fails with its error and cause', async () => {
    sfn.on(DescribeExecutionCommand).resolves({
      status: 'FAILED',
      error: 'CommandFailedError',
      cause: 'backend-2 (i-0...): failed; stderr tail:\npatroni would not start',
      executionArn,
      stateMachineArn: base.ResourceProperties.StateMachineArn,
      startDate: new Date(),
    });
    const event = {
      ...base,
      RequestType: 'Create',
      PhysicalResourceId: 'pem-ha-bootstrap',
      Data: { ExecutionArn: executionArn },
    };
    await expect(
      isComplete(event as unknown as CdkCustomResourceIsCompleteEvent, sfnClient),
    ).rejects.toThrow(/ended FAILED: CommandFailedError\nbackend-2 .*patroni would not start/s);
  });

  test('Given a running execution, then CloudFormation keeps waiting', async () => {
    sfn
      .on(DescribeExecutionCommand)
      .resolves({ status: 'RUNNING', executionArn, stateMachineArn: 'x', startDate: new Date() });
    const event = {
      ...base,
      RequestType: 'Update',
      PhysicalResourceId: 'pem-ha-bootstrap',
      Data: { ExecutionArn: executionArn },
    };
    await expect(
      isComplete(event as unknown as CdkCustomResourceIsCompleteEvent, sfnClient),
    ).resolves.toEqual({ IsComplete: false });
  });
});

describe('settings rollout on deploy (the same custom resource handlers)', () => {
  const base = {
    ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:provider',
    ResponseURL: 'https://cloudformation-custom-resource-response.example/',
    StackId: 'arn:aws:cloudformation:eu-west-1:123456789012:stack/PemHa/guid',
    RequestId: 'feed0000-1111-2222-3333-444455556666',
    LogicalResourceId: 'SettingsRollout',
    ResourceType: 'Custom::PemHaSettingsRollout',
    ResourceProperties: {
      ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:provider',
      StateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:Upgrade',
      Input: '{"component":"settings","version":"latest"}',
      SkipCreate: 'true',
      PhysicalId: 'pem-ha-settings-rollout',
    },
  };

  test('Given the first deploy, then nothing starts: a new cluster has no settings waiting', async () => {
    const event = { ...base, RequestType: 'Create' } as CdkCustomResourceEvent;
    await expect(onEvent(event, sfnClient)).resolves.toEqual({
      PhysicalResourceId: 'pem-ha-settings-rollout',
    });
    await expect(
      isComplete(event as unknown as CdkCustomResourceIsCompleteEvent, sfnClient),
    ).resolves.toEqual({ IsComplete: true });
    expect(sfn).not.toHaveReceivedCommand(StartExecutionCommand);
  });

  test('Given an update, then the runbook starts with the resource input', async () => {
    sfn.on(StartExecutionCommand).resolves({ executionArn: 'arn:x', startDate: new Date() });
    const event = {
      ...base,
      RequestType: 'Update',
      PhysicalResourceId: 'pem-ha-settings-rollout',
      OldResourceProperties: base.ResourceProperties,
    } as CdkCustomResourceEvent;
    await onEvent(event, sfnClient);
    expect(sfn).toHaveReceivedCommandWith(StartExecutionCommand, {
      stateMachineArn: base.ResourceProperties.StateMachineArn,
      input: '{"component":"settings","version":"latest"}',
    });
  });

  test('Given an Input that is not a JSON object, then nothing starts and the error says so', async () => {
    const event = {
      ...base,
      ResourceProperties: { ...base.ResourceProperties, Input: '[1]' },
      RequestType: 'Update',
      PhysicalResourceId: 'pem-ha-settings-rollout',
      OldResourceProperties: base.ResourceProperties,
    } as CdkCustomResourceEvent;
    await expect(onEvent(event, sfnClient)).rejects.toThrow(
      'Input must be a JSON object as text; given "[1]"',
    );
    expect(sfn).not.toHaveReceivedCommand(StartExecutionCommand);
  });
});
