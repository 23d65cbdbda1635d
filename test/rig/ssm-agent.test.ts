/**
 * The rig's Run Command: SendCommand queues, the node agent
 * (rig/host/ssm-agent.sh, run here as a host process against a loopback
 * endpoint) fetches and reports, and GetCommandInvocation tells what an SDK
 * caller would see, including a command no agent ever picks up.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CancelCommandCommand,
  GetCommandInvocationCommand,
  GetCommandInvocationCommandOutput,
  SendCommandCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { LocalAws, REGION } from '../../rig/local-aws/server';

const AGENT = join(__dirname, '../../rig/host/ssm-agent.sh');
const INSTANCE = 'i-0123456789abcdef0';
const OTHER_INSTANCE = 'i-0fedcba9876543210';
const work = mkdtempSync(join(tmpdir(), 'rig-ssm-agent-'));
const aws = new LocalAws();
let endpoint: string;
let ssm: SSMClient;
const agents: ChildProcess[] = [];

const shellStep = (name: string, lines: string[], timeoutSeconds = 30) => ({
  action: 'aws:runShellScript',
  name,
  inputs: { runCommand: lines, timeoutSeconds: String(timeoutSeconds) },
});

function startAgent(): ChildProcess {
  const agent = spawn('bash', [AGENT], {
    env: {
      PATH: process.env.PATH,
      RIG_SSM_ENDPOINT: endpoint,
      RIG_INSTANCE_ID: INSTANCE,
      RIG_SSM_WORK_DIR: work,
    },
    detached: true,
    stdio: 'ignore',
  });
  agents.push(agent);
  return agent;
}

/** A process and all its descendants (`timeout` puts commands in process groups of their own). */
function processTree(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // ended while listed
    }
  }
  const tree = [pid];
  for (let index = 0; index < tree.length; index++) tree.push(...(parents.get(tree[index]) ?? []));
  return tree;
}

/**
 * Stops the agent and every command it started, by PID, then gives the
 * endpoint a moment to see its held poll hang up (else the next command is
 * offered to it and only offered again 15 s later).
 */
async function stopAgent(agent: ChildProcess): Promise<void> {
  const tree = processTree(agent.pid!);
  for (const pid of [-agent.pid!, ...tree]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
}

async function send(document: string, instanceId = INSTANCE, timeoutSeconds?: number) {
  const sent = await ssm.send(
    new SendCommandCommand({
      DocumentName: document,
      InstanceIds: [instanceId],
      Parameters: { Word: ['hello'] },
      TimeoutSeconds: timeoutSeconds,
    }),
  );
  return sent.Command!.CommandId!;
}

/** Polls (bounded) until the step's status is final. */
async function outcome(
  commandId: string,
  pluginName: string,
  instanceId = INSTANCE,
  timeoutMs = 30_000,
): Promise<GetCommandInvocationCommandOutput> {
  const until = Date.now() + timeoutMs;
  for (let attempt = 0; Date.now() < until; attempt++) {
    const invocation = await ssm.send(
      new GetCommandInvocationCommand({
        CommandId: commandId,
        InstanceId: instanceId,
        PluginName: pluginName,
      }),
    );
    if (!['Pending', 'InProgress'].includes(invocation.Status!)) return invocation;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`command ${commandId} step ${pluginName} did not end in ${timeoutMs} ms`);
}

beforeAll(async () => {
  endpoint = await aws.listen('127.0.0.1');
  ssm = new SSMClient({
    region: REGION,
    endpoint,
    credentials: { accessKeyId: 'rig', secretAccessKey: 'rig' },
    maxAttempts: 1,
  });
  const parameters = { Word: { type: 'String' } };
  aws.ssm.registerDocument('two-steps', {
    schemaVersion: '2.2',
    parameters,
    mainSteps: [
      shellStep('first', ['echo "{{ Word }} from $AWS_REGION in $(pwd)"', 'echo note >&2']),
      shellStep('second', ['exit "${EXIT_CODE:-0}"']),
    ],
  });
  aws.ssm.registerDocument('fails-first', {
    schemaVersion: '2.2',
    parameters,
    mainSteps: [shellStep('first', ['echo broke >&2', 'exit 3']), shellStep('second', ['true'])],
  });
  aws.ssm.registerDocument('sleeps', {
    schemaVersion: '2.2',
    parameters,
    mainSteps: [shellStep('only', ['sleep 30'], 2)],
  });
  for (const id of [INSTANCE, OTHER_INSTANCE])
    aws.ssm.registerInstance(id, { env: { AWS_REGION: REGION } });
});

afterAll(async () => {
  for (const agent of agents) await stopAgent(agent);
  ssm.destroy();
  await aws.close();
  rmSync(work, { recursive: true, force: true });
});

describe('Run Command through a node agent', () => {
  test('Given a running agent, when a two-step document is sent, then each step runs with the parameters and the instance environment, and reports its output', async () => {
    const agent = startAgent();
    try {
      const commandId = await send('two-steps');
      const first = await outcome(commandId, 'first');
      expect(first).toMatchObject({ Status: 'Success', ResponseCode: 0 });
      expect(first.StandardOutputContent).toBe(
        `hello from ${REGION} in ${work}/${commandId}/first\n`,
      );
      expect(first.StandardErrorContent).toBe('note\n');
      expect(await outcome(commandId, 'second')).toMatchObject({ Status: 'Success' });
    } finally {
      await stopAgent(agent);
    }
  });

  test('Given a failing first step, then it is Failed with its exit code and stderr, and the next step is Cancelled', async () => {
    const agent = startAgent();
    try {
      const commandId = await send('fails-first');
      expect(await outcome(commandId, 'first')).toMatchObject({
        Status: 'Failed',
        ResponseCode: 3,
        StandardErrorContent: 'broke\n',
      });
      expect(await outcome(commandId, 'second')).toMatchObject({ Status: 'Cancelled' });
    } finally {
      await stopAgent(agent);
    }
  });

  test('Given a step that outlives its timeoutSeconds, then it ends TimedOut (ExecutionTimedOut)', async () => {
    const agent = startAgent();
    try {
      const commandId = await send('sleeps');
      expect(await outcome(commandId, 'only', INSTANCE, 20_000)).toMatchObject({
        Status: 'TimedOut',
        StatusDetails: 'ExecutionTimedOut',
      });
    } finally {
      await stopAgent(agent);
    }
  });

  test('Given no agent polls for an instance, then its command stays Pending and ends TimedOut (DeliveryTimedOut) at SendCommand’s TimeoutSeconds', async () => {
    // Given an agent for another instance only
    const agent = startAgent();
    try {
      const commandId = await send('two-steps', OTHER_INSTANCE, 3);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const pending = await ssm.send(
        new GetCommandInvocationCommand({
          CommandId: commandId,
          InstanceId: OTHER_INSTANCE,
          PluginName: 'first',
        }),
      );
      expect(pending).toMatchObject({ Status: 'Pending', ResponseCode: -1 });
      expect(await outcome(commandId, 'first', OTHER_INSTANCE, 10_000)).toMatchObject({
        Status: 'TimedOut',
        StatusDetails: 'DeliveryTimedOut',
      });
    } finally {
      await stopAgent(agent);
    }
  });

  test('Given a command no agent has taken, when it is cancelled, then it is Cancelled and an agent that starts later never runs it', async () => {
    const commandId = await send('two-steps', INSTANCE);
    await ssm.send(new CancelCommandCommand({ CommandId: commandId, InstanceIds: [INSTANCE] }));
    const agent = startAgent();
    try {
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect(await outcome(commandId, 'first')).toMatchObject({
        Status: 'Cancelled',
        ResponseCode: -1,
      });
      expect(existsSync(join(work, commandId))).toBe(false);
    } finally {
      await stopAgent(agent);
    }
  });

  test('Given the agent stops while a step runs, when it starts again (a reboot), then the step is reported Failed, saying the instance restarted', async () => {
    aws.ssm.registerDocument('long', {
      schemaVersion: '2.2',
      mainSteps: [shellStep('only', ['sleep 20'])],
    });
    const first = startAgent();
    const commandId = (
      await ssm.send(new SendCommandCommand({ DocumentName: 'long', InstanceIds: [INSTANCE] }))
    ).Command!.CommandId!;
    for (let attempt = 0; attempt < 40; attempt++) {
      const seen = await ssm.send(
        new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: INSTANCE }),
      );
      if (seen.Status === 'InProgress') break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await stopAgent(first);
    const second = startAgent();
    try {
      const ended = await outcome(commandId, 'only');
      expect(ended).toMatchObject({ Status: 'Failed' });
      expect(ended.StandardErrorContent).toMatch(/stopped or restarted while this command ran/);
    } finally {
      await stopAgent(second);
    }
  });
});
