/**
 * The rig's local AWS endpoint as unchanged SDK v3 clients see it, found
 * through the AWS_ENDPOINT_URL_* variables the rig sets: EC2 and ELBv2 read
 * from the synthesized template and plan (node state and HAProxy's checks
 * faked here), Step Functions executions as the runbook runner records them.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateReplaceRootVolumeTaskCommand,
  DescribeInstancesCommand,
  DescribeReplaceRootVolumeTasksCommand,
  EC2Client,
  Filter,
} from '@aws-sdk/client-ec2';
import {
  DeregisterTargetsCommand,
  DescribeTargetHealthCommand,
  RegisterTargetsCommand,
  ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { rigView } from '../../rig/local-aws/rig-view';
import { ACCOUNT, LocalAws, localAwsEndpoints, REGION } from '../../rig/local-aws/server';
import { LocalExecutions } from '../../rig/local-aws/sfn';
import { listenersWithGroups } from '../../rig/listeners';
import { nlbListeners } from '../../rig/nlb';
import { planCluster, rigResourceValues } from '../../rig/plan';
import { runRunbook } from '../../rig/runbook';
import type { SynthesizedTemplate } from '../../rig/template';
import { synthStack } from '../helpers/synth';

const template = synthStack().template.toJSON() as SynthesizedTemplate;
const plan = planCluster(template);
const pseudo = { region: REGION, accountId: ACCOUNT };
const resources = rigResourceValues(plan, template, pseudo);
const node = (name: string) => plan.nodes.find((n) => n.name === name)!;
const targetGroupOf = (port: number) =>
  resources.ref(nlbListeners(template).find((l) => l.port === port)!.targetGroupLogicalId);

// What the rig's host and HAProxy would say; each test sets its own.
let stopped = new Set<string>();
let haproxy: Record<number, Record<string, string>> | Error = {};
// The ALB stand-in's servers of port 443 (status, seconds since it changed), and what was asked of it.
let albServers: Record<string, { status: string; lastChangeSeconds: number }> = {};
const albCalls: string[] = [];

// Root volumes the rig was asked to replace; each replacement ends when `finishRoot` is called.
const rootsReplaced: string[] = [];
let finishRoot: (outcome?: Error) => void = () => undefined;

const aws = new LocalAws({
  ...rigView(plan, template, {
    isRunning: (name) => !stopped.has(name),
    haproxyHealth: async () => {
      if (haproxy instanceof Error) throw haproxy;
      return haproxy;
    },
    alb: {
      servers: async (port) => (port === 443 ? albServers : {}),
      register: async (port, nodes, registered) => {
        albCalls.push(`${port} ${nodes.map((n) => n.name).join(',')} ${registered}`);
      },
    },
  }),
  replaceRootVolume: (instance) => {
    rootsReplaced.push(instance.instanceId);
    return new Promise<void>((resolve, reject) => {
      finishRoot = (outcome) => (outcome ? reject(outcome) : resolve());
    });
  },
});
const savedEnv = { ...process.env };
let ec2: EC2Client;
let elbv2: ElasticLoadBalancingV2Client;
let sfn: SFNClient;
let ssm: SSMClient;

beforeAll(async () => {
  // As serveRigAws does: the clients get no endpoint, only the variables.
  Object.assign(process.env, localAwsEndpoints(await aws.listen('127.0.0.1')));
  const config = {
    region: REGION,
    credentials: { accessKeyId: 'rig', secretAccessKey: 'rig' },
    maxAttempts: 1,
  };
  ec2 = new EC2Client(config);
  elbv2 = new ElasticLoadBalancingV2Client(config);
  sfn = new SFNClient(config);
  ssm = new SSMClient(config);
});

afterAll(async () => {
  for (const client of [ec2, elbv2, sfn, ssm]) client.destroy();
  await aws.close();
  process.env = savedEnv;
});

beforeEach(() => {
  stopped = new Set();
  haproxy = {};
  albServers = {};
  albCalls.length = 0;
});

async function instances(filters: Filter[], instanceIds?: string[]) {
  const { Reservations } = await ec2.send(
    new DescribeInstancesCommand({ Filters: filters, InstanceIds: instanceIds }),
  );
  return (Reservations ?? []).flatMap((r) => r.Instances ?? []);
}

describe('SSM Parameter Store on the rig (where the CA function publishes the roots)', () => {
  test('Given no parameter, then GetParameter raises ParameterNotFound; put, it reads back; put again, only with Overwrite, as version 2', async () => {
    const Name = '/rig-test/pki/root-certificates';
    await expect(ssm.send(new GetParameterCommand({ Name }))).rejects.toMatchObject({
      name: 'ParameterNotFound',
    });
    await ssm.send(new PutParameterCommand({ Name, Value: 'first', Type: 'String' }));
    expect((await ssm.send(new GetParameterCommand({ Name }))).Parameter).toMatchObject({
      Name,
      Value: 'first',
      Version: 1,
    });
    await expect(
      ssm.send(new PutParameterCommand({ Name, Value: 'second', Type: 'String' })),
    ).rejects.toMatchObject({ name: 'ParameterAlreadyExists' });
    await ssm.send(
      new PutParameterCommand({ Name, Value: 'second', Type: 'String', Overwrite: true }),
    );
    expect((await ssm.send(new GetParameterCommand({ Name }))).Parameter).toMatchObject({
      Value: 'second',
      Version: 2,
    });
  });
});

describe('EC2 DescribeInstances on the rig', () => {
  test('Given backend-2 stopped, when a caller asks for running backends by tag, then it gets the other two with their tags and addresses', async () => {
    stopped = new Set(['backend-2']);
    const found = await instances([
      { Name: 'tag:pem-ha:tier', Values: ['backend'] },
      { Name: 'instance-state-name', Values: ['running'] },
    ]);
    expect(found.map((i) => i.InstanceId)).toEqual([
      node('backend-1').instanceId,
      node('backend-3').instanceId,
    ]);
    expect(found[0]).toMatchObject({
      PrivateIpAddress: '10.40.3.20',
      State: { Code: 16, Name: 'running' },
    });
    expect(found[0].Tags).toEqual(
      expect.arrayContaining([
        { Key: 'Name', Value: 'pem-ha-backend-1' },
        { Key: 'pem-ha:cluster', Value: 'pem-ha' },
        { Key: 'pem-ha:tier', Value: 'backend' },
        { Key: 'pem-ha:node', Value: 'backend-1' },
      ]),
    );
  });

  test('Given backend-2 stopped, when a caller asks for it by node tag, then it is listed as stopped', async () => {
    stopped = new Set(['backend-2']);
    const [backend2, ...others] = await instances([
      { Name: 'tag:pem-ha:node', Values: ['backend-2'] },
    ]);
    expect(others).toEqual([]);
    expect(backend2.State).toEqual({ Code: 80, Name: 'stopped' });
  });

  test('Given instance ids and wildcard values, then only those instances match', async () => {
    const ids = [node('etcd-1').instanceId, node('web-2').instanceId];
    expect((await instances([], ids)).map((i) => i.InstanceId)).toEqual(ids);
    const webs = await instances([{ Name: 'tag:Name', Values: ['pem-ha-web-*'] }]);
    expect(webs.map((i) => i.InstanceId)).toEqual([
      node('web-1').instanceId,
      node('web-2').instanceId,
    ]);
  });

  test('Given an unknown instance id or filter, then the SDK raises EC2 errors', async () => {
    await expect(instances([], ['i-0123456789abcdef0'])).rejects.toMatchObject({
      name: 'InvalidInstanceID.NotFound',
      $metadata: { httpStatusCode: 400 },
    });
    await expect(instances([{ Name: 'colour', Values: ['blue'] }])).rejects.toMatchObject({
      name: 'InvalidParameterValue',
      message: "The filter 'colour' is invalid",
    });
  });
});

describe('EC2 root volume replacement on the rig', () => {
  const create = (instanceId: string, clientToken: string) =>
    ec2.send(
      new CreateReplaceRootVolumeTaskCommand({
        InstanceId: instanceId,
        ClientToken: clientToken,
        DeleteReplacedRootVolume: true,
      }),
    );
  const stateOf = async (taskId: string) =>
    (
      await ec2.send(
        new DescribeReplaceRootVolumeTasksCommand({ ReplaceRootVolumeTaskIds: [taskId] }),
      )
    ).ReplaceRootVolumeTasks?.map((t) => t.TaskState);

  test('Given a running instance, then the task is in progress until the rig has replaced its root, the same client token returns the same task, and it ends succeeded', async () => {
    const { instanceId } = node('backend-2');
    const first = await create(instanceId, 'token-a');
    const again = await create(instanceId, 'token-a');
    const taskId = first.ReplaceRootVolumeTask!.ReplaceRootVolumeTaskId!;

    expect(again.ReplaceRootVolumeTask?.ReplaceRootVolumeTaskId).toBe(taskId);
    expect(rootsReplaced.filter((id) => id === instanceId)).toHaveLength(1);
    expect(await stateOf(taskId)).toEqual(['in-progress']);
    finishRoot();
    await new Promise((resolve) => setImmediate(resolve));
    expect(await stateOf(taskId)).toEqual(['succeeded']);
  });

  test('Given the rig fails to replace the root, then the task ends failed', async () => {
    const taskId = (await create(node('etcd-2').instanceId, 'token-b')).ReplaceRootVolumeTask!
      .ReplaceRootVolumeTaskId!;
    finishRoot(new Error('the SSM agent did not start'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(await stateOf(taskId)).toEqual(['failed']);
  });

  test('Given a stopped instance or an unknown one, then EC2 refuses with its error codes and nothing is replaced', async () => {
    stopped.add('backend-3');
    const count = rootsReplaced.length;
    await expect(create(node('backend-3').instanceId, 'token-c')).rejects.toMatchObject({
      name: 'IncorrectState',
    });
    await expect(create('i-0000000000000dead', 'token-d')).rejects.toMatchObject({
      name: 'InvalidInstanceID.NotFound',
    });
    expect(rootsReplaced).toHaveLength(count);
  });
});

describe('ELBv2 DescribeTargetHealth on the rig', () => {
  const health = async (targetGroupArn: string) => {
    const { TargetHealthDescriptions } = await elbv2.send(
      new DescribeTargetHealthCommand({ TargetGroupArn: targetGroupArn }),
    );
    return Object.fromEntries(
      (TargetHealthDescriptions ?? []).map((d) => [
        plan.nodes.find((n) => n.instanceId === d.Target?.Id)?.name ?? String(d.Target?.Id),
        { port: d.Target?.Port, checkPort: d.HealthCheckPort, ...d.TargetHealth },
      ]),
    );
  };

  test("Given HAProxy's checks on the write listener, then its targets are healthy, unhealthy or still initial", async () => {
    haproxy = { 5432: { 'backend-1': 'UP', 'backend-2': 'DOWN' }, 5433: { 'backend-3': 'UP' } };
    expect(await health(targetGroupOf(5432))).toEqual({
      'backend-1': { port: 5432, checkPort: '8008', State: 'healthy' },
      'backend-2': {
        port: 5432,
        checkPort: '8008',
        State: 'unhealthy',
        Reason: 'Target.FailedHealthChecks',
        Description: 'Health checks failed',
      },
      'backend-3': expect.objectContaining({ State: 'initial' }),
    });
    expect((await health(targetGroupOf(5433)))['backend-3'].State).toBe('healthy');
  });

  test('Given a stopped backend, then its target is unused for its state', async () => {
    stopped = new Set(['backend-1']);
    haproxy = { 5432: { 'backend-1': 'DOWN', 'backend-2': 'UP', 'backend-3': 'DOWN' } };
    expect((await health(targetGroupOf(5432)))['backend-1']).toMatchObject({
      State: 'unused',
      Reason: 'Target.InvalidState',
    });
  });

  test('Given HAProxy cannot be read, then the targets are unavailable, not an error', async () => {
    haproxy = new Error('nlb node not running');
    const states = Object.values(await health(targetGroupOf(5432))).map((t) => t.State);
    expect(states).toEqual(['unavailable', 'unavailable', 'unavailable']);
  });

  test('Given an unknown target group, then the SDK raises TargetGroupNotFoundException', async () => {
    await expect(health('rig-NoSuchGroup')).rejects.toMatchObject({
      name: 'TargetGroupNotFoundException',
      $metadata: { httpStatusCode: 400 },
    });
  });
});

describe("ELBv2 registration in the ALB stand-in's web target group", () => {
  const [webListener] = listenersWithGroups(template, 'HTTPS');
  const webGroup = resources.ref(webListener.groupLogicalId);
  const webTargets = async () => {
    const { TargetHealthDescriptions } = await elbv2.send(
      new DescribeTargetHealthCommand({ TargetGroupArn: webGroup }),
    );
    return Object.fromEntries(
      (TargetHealthDescriptions ?? []).map((d) => [
        plan.nodes.find((n) => n.instanceId === d.Target?.Id)!.name,
        d.TargetHealth?.State,
      ]),
    );
  };

  test('Given a web host taken out 5 s ago and one 40 s ago (the group drains for 30 s), then the first is draining, the second is no longer listed', async () => {
    albServers = {
      'web-1': { status: 'MAINT', lastChangeSeconds: 5 },
      'web-2': { status: 'MAINT', lastChangeSeconds: 40 },
    };
    expect(webListener.attributes.get('deregistration_delay.timeout_seconds')).toBe('30');
    expect(await webTargets()).toEqual({ 'web-1': 'draining' });
    albServers = {
      'web-1': { status: 'UP', lastChangeSeconds: 100 },
      'web-2': { status: 'DOWN', lastChangeSeconds: 3 },
    };
    expect(await webTargets()).toEqual({ 'web-1': 'healthy', 'web-2': 'unhealthy' });
  });

  test('Given DeregisterTargets and RegisterTargets for a web host, then the ALB stand-in is asked to take it out and put it back', async () => {
    const target = [{ Id: node('web-2').instanceId }];
    await elbv2.send(new DeregisterTargetsCommand({ TargetGroupArn: webGroup, Targets: target }));
    await elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: webGroup, Targets: target }));
    expect(albCalls).toEqual(['443 web-2 false', '443 web-2 true']);
  });

  test('Given a backend in the web group, or the NLB write group, then ELBv2 errors name it and nothing is asked of the ALB', async () => {
    const register = (arn: string, id: string) =>
      elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: arn, Targets: [{ Id: id }] }));
    await expect(register(webGroup, node('backend-1').instanceId)).rejects.toMatchObject({
      name: 'InvalidTargetException',
      message: expect.stringContaining('is not a web host'),
    });
    await expect(register(targetGroupOf(5432), node('backend-1').instanceId)).rejects.toMatchObject(
      { message: expect.stringContaining("the ALB's web target group only") },
    );
    expect(albCalls).toEqual([]);
  });
});

describe('Step Functions DescribeExecution on the rig', () => {
  const describeExecution = (executionArn: string) =>
    sfn.send(new DescribeExecutionCommand({ executionArn }));

  test('Given an execution recorded as running, then DescribeExecution says RUNNING until it ends, and how it ended', async () => {
    const machine = `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:Recorded`;
    const arn = aws.executions.start(machine, 'first');
    expect(arn).toBe(`arn:aws:states:${REGION}:${ACCOUNT}:execution:Recorded:first`);
    const running = await describeExecution(arn);
    expect(running).toMatchObject({ executionArn: arn, name: 'first', status: 'RUNNING' });
    expect(Math.abs(running.startDate!.getTime() - Date.now())).toBeLessThan(60_000);
    aws.executions.stop(arn, 'SUCCEEDED');
    expect((await describeExecution(arn)).status).toBe('SUCCEEDED');
    await expect(describeExecution(`${arn}-unknown`)).rejects.toMatchObject({
      name: 'ExecutionDoesNotExist',
    });
  });

  test('Given two processes of one rig, then each sees what the other started, and an execution whose process died is aborted', () => {
    const dir = mkdtempSync(join(tmpdir(), 'local-sfn-'));
    try {
      const journal = join(dir, 'executions.jsonl');
      const machine = `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:Upgrade`;
      // Given one `npm run local -- upgrade` process that started an execution
      const first = new LocalExecutions(journal);
      const arn = first.start(machine, 'from-first');
      // When another process of the same rig asks
      const second = new LocalExecutions(journal);
      const described = (executionArn: string) =>
        second.describeExecution({ executionArn }) as { name: string; status: string };
      // Then it sees the execution running, and how it ended
      expect(described(arn)).toMatchObject({ name: 'from-first', status: 'RUNNING' });
      first.stop(arn, 'SUCCEEDED');
      expect(described(arn)).toMatchObject({ name: 'from-first', status: 'SUCCEEDED' });
      // And an execution left RUNNING by a process that is gone counts as aborted
      const gone = spawnSync('true').pid;
      appendFileSync(
        journal,
        `${JSON.stringify({ event: 'start', execution: { executionArn: `${arn}-gone`, stateMachineArn: machine, name: 'gone', status: 'RUNNING', startDate: Date.now(), pid: gone } })}\n`,
      );
      expect(described(`${arn}-gone`)).toMatchObject({ name: 'gone', status: 'ABORTED' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('Given a runbook run by the rig', () => {
    const UPGRADE = `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:Upgrade`;
    const dir = mkdtempSync(join(tmpdir(), 'local-aws-runbook-'));
    const runbook: SynthesizedTemplate = {
      Resources: {
        Upgrade: {
          Type: 'AWS::StepFunctions::StateMachine',
          Properties: {
            DefinitionString: JSON.stringify({
              StartAt: 'Find itself',
              States: {
                'Find itself': {
                  Type: 'Task',
                  Resource: 'arn:aws:states:::lambda:invoke',
                  Parameters: {
                    FunctionName: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:Echo`,
                    Payload: {
                      'execution.$': '$$.Execution.Id',
                      'machine.$': '$$.StateMachine.Id',
                    },
                  },
                  OutputPath: '$.Payload',
                  End: true,
                },
              },
            }),
          },
        },
        Echo: {
          Type: 'AWS::Lambda::Function',
          Metadata: { 'aws:asset:path': 'asset.echo' },
          Properties: { Handler: 'index.handler' },
        },
      },
      Outputs: { UpgradeStateMachineArn: { Value: { Ref: 'Upgrade' } } },
    };
    const context = {
      template: runbook,
      assemblyDir: dir,
      resources: rigResourceValues(
        {
          clusterName: 'pem-ha',
          vpcCidr: '',
          nodes: [],
          nlbAddress: '',
          albAddress: '',
          storageAddress: '',
        },
        runbook,
        pseudo,
      ),
      pseudo,
      pollMs: 10,
      executions: aws.executions,
    };
    beforeAll(() => {
      mkdirSync(join(dir, 'asset.echo'));
      writeFileSync(join(dir, 'asset.echo/index.js'), 'exports.handler = async (e) => e;\n');
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    test('when its task describes $$.Execution.Id, then it finds itself running, and SUCCEEDED afterwards', async () => {
      let seen: unknown;
      const { output } = await runRunbook(context, 'UpgradeStateMachineArn', {
        wrapTask: (_state, handler) =>
          (async (input: { Payload: { execution: string } }) => {
            seen = (await describeExecution(input.Payload.execution)).status;
            return (handler as unknown as (i: unknown) => Promise<unknown>)(input);
          }) as never,
      });
      const { execution, machine } = output as { execution: string; machine: string };
      expect(machine).toBe(UPGRADE);
      expect(execution).toMatch(
        new RegExp(`^arn:aws:states:${REGION}:${ACCOUNT}:execution:Upgrade:[0-9a-f-]{36}$`),
      );
      expect(seen).toBe('RUNNING');
      expect((await describeExecution(execution)).status).toBe('SUCCEEDED');
    });

    test('when its task fails, then the execution is FAILED', async () => {
      let execution = '';
      const failing = runRunbook(context, 'UpgradeStateMachineArn', {
        wrapTask: () =>
          (async (input: { Payload: { execution: string } }) => {
            execution = input.Payload.execution;
            throw new Error('upgrade step failed');
          }) as never,
      });
      await expect(failing).rejects.toThrow('upgrade step failed');
      expect((await describeExecution(execution)).status).toBe('FAILED');
    });
  });
});
