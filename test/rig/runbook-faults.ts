/**
 * Runbooks under faults, on the cluster suite's rig (called from
 * cluster.test.ts, which owns the rig): a replica that receives WAL but does
 * not replay it, a node whose link is cut while a command is sent to it, and
 * a node killed while the bootstrap starts it.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { GetCommandInvocationCommand, SSMClient } from '@aws-sdk/client-ssm';
import { EC2Client } from '@aws-sdk/client-ec2';
import { pollNodeCommand, startNodeCommand } from '../../functions/node-command/command';
import { RigCluster } from '../../rig/cluster';
import { patroniMembers, waitForHealthyReplication } from '../../rig/patroni';
import { REPO_ROOT } from '../../rig/synth';
import { resourcesOfType } from '../../rig/template';
import { endpointQueryOn, eventually, nodeQueryOn, recordingRun } from '../helpers/rig';

type RunbookError = Error & { cause?: Error };
const failureOf = (run: Promise<unknown>) =>
  run.then(
    () => undefined,
    (error: RunbookError) => error,
  );

/** The synthesized document whose name ends with `suffix`, and its step timeout. */
function documentOf(rig: RigCluster, suffix: string) {
  const found = resourcesOfType(rig.template, 'AWS::SSM::Document').find(([, d]) =>
    String(d.Properties?.Name).endsWith(suffix),
  );
  if (!found) throw new Error(`the template has no SSM document named *${suffix}`);
  const [, document] = found;
  const content = document.Properties?.Content as {
    mainSteps: { inputs: { timeoutSeconds: string } }[];
  };
  return {
    name: String(document.Properties?.Name),
    runTimeoutSeconds: Number(content.mainSteps[0].inputs.timeoutSeconds),
  };
}

/** `npm run local -- <args>` as a user runs it, bounded; resolves with its exit code and output. */
export function localCli(args: string[], timeoutMs: number) {
  return new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn(join(REPO_ROOT, 'node_modules/.bin/tsx'), ['rig/cli.ts', ...args], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

export function runbookFaultTests(
  rig: () => RigCluster,
  replaceRig: (attached: RigCluster) => void,
): void {
  const replicas = async () =>
    (await waitForHealthyReplication(rig())).filter((m) => m.role !== 'leader').map((m) => m.name);

  test("a replica that receives WAL but does not replay it: the upgrade's preflight refuses, naming it and both lags, and no node is touched", async () => {
    const [stalled] = await replicas();
    // Given the replica's startup (recovery) process frozen while its WAL receiver runs on
    const freeze = (signal: string) =>
      rig().execOk(stalled, ['pkill', `-${signal}`, '-f', '^postgres: .*startup']);
    await freeze('STOP');
    const sent: string[] = [];
    try {
      // And about 50 MB of WAL written on the primary
      await endpointQueryOn(
        rig(),
        5432,
        "CREATE TABLE replay_filler AS SELECT g AS id, repeat('x', 900) AS pad FROM generate_series(1, 50000) g",
      );
      // And received by the replica: Patroni's /cluster lag (received WAL) is back under the bound
      await eventually(`${stalled} receiving the new WAL`, 60_000, async () => {
        const member = (await patroniMembers(rig()))?.find((m) => m.name === stalled);
        expect(typeof member?.lag === 'number' && member.lag <= 1024 * 1024).toBe(true);
      });
      // When the upgrade runs (a dry run would pass the same preflight)
      const error = await failureOf(
        rig().upgrade({ component: 'postgresql', version: 'latest' }, recordingRun(sent)),
      );
      // Then the preflight refuses, with the replay lag in bytes and the received lag
      console.log(`preflight: ${error?.message}`);
      expect(error?.cause?.name ?? error?.name).toBe('PreflightFailedError');
      expect(error?.message).toMatch(new RegExp(`${stalled} replays \\d{7,} bytes behind`));
      expect(error?.message).toMatch(/receives \d+ bytes behind/);
      expect(error?.message).toContain('no node was touched');
      expect(sent).toEqual([]);
    } finally {
      await freeze('CONT');
    }
    await endpointQueryOn(rig(), 5432, 'DROP TABLE replay_filler');
    await waitForHealthyReplication(rig());
  }, 400_000);

  test('a command sent to a node whose link is cut is never delivered, and ends with CommandTimedOutError at the flow’s deadline', async () => {
    const [cut] = await replicas();
    const node = rig().plan.nodes.find((n) => n.name === cut)!;
    const upgrade = documentOf(rig(), '-upgrade');
    const clients = { ssm: new SSMClient({}), ec2: new EC2Client({}) };
    await rig().host.setLink(cut, false);
    try {
      // When the node-command function sends a read-only step to it
      const command = await startNodeCommand(clients.ssm, {
        action: 'start',
        node: { name: cut, instanceId: node.instanceId },
        document: upgrade.name,
        parameters: {
          Action: 'check',
          Component: 'postgresql',
          Version: 'latest',
          Tier: 'backend',
          MemberName: cut,
          MemberAddress: node.address,
        },
        runTimeoutSeconds: upgrade.runTimeoutSeconds,
        comment: 'pem-ha rig: partition test',
      });
      // Then while the link is down the agent never picks it up
      for (let look = 0; look < 4; look++) {
        await new Promise((resolve) => setTimeout(resolve, 5000));
        expect(
          await pollNodeCommand(clients.ssm, clients.ec2, { action: 'poll', command }),
        ).toEqual({ state: 'running', status: 'Pending' });
      }
      // And at the flow's deadline it is a timeout, not a success
      const late = () => command.deadline + 1;
      await expect(
        pollNodeCommand(clients.ssm, clients.ec2, { action: 'poll', command }, late),
      ).rejects.toMatchObject({
        name: 'CommandTimedOutError',
        message: expect.stringContaining(`${cut} (${node.instanceId})`),
      });
      // And it is cancelled: the node will not run it once its link is back
      const { Status } = await clients.ssm.send(
        new GetCommandInvocationCommand({
          CommandId: command.commandId,
          InstanceId: node.instanceId,
        }),
      );
      expect(Status).toBe('Cancelled');
    } finally {
      await rig().host.setLink(cut, true);
      clients.ssm.destroy();
      clients.ec2.destroy();
    }
    await waitForHealthyReplication(rig());
  }, 300_000);

  test('a replica killed while the bootstrap starts it: InstanceNotRunningError for that node; after a reboot `npm run local -- bootstrap` converges with its data kept', async () => {
    // The bootstrap starts the first backend as "leader" and the others as replicas.
    const [victim] = (await replicas()).filter((node) => node !== 'backend-1');
    const identity = () =>
      nodeQueryOn(rig(), victim, 'SELECT system_identifier FROM pg_control_system()');
    const systemId = await identity();
    await rig().execOk(victim, [
      'sh',
      '-c',
      'touch "$(runuser -u postgres -- psql -Atc "SHOW data_directory")/pem-ha-test-kept"',
    ]);
    // When the node dies as the bootstrap reaches it
    const error = await failureOf(
      rig().runRunbook('BootstrapStateMachineArn', {
        wrapTask: (state, handler) =>
          state !== 'Start Patroni replica: send'
            ? handler
            : ((async (input: { Payload: { node: { name: string } } }) => {
                if (input.Payload.node.name === victim) await rig().host.kill(victim);
                return handler(input as never);
              }) as never),
      }),
    );
    // Then the run names the node and says its instance is not running
    console.log(`bootstrap: ${error?.cause?.message}`);
    expect(error?.cause?.name).toBe('InstanceNotRunningError');
    expect(error?.cause?.message).toMatch(new RegExp(`^${victim} \\(i-[0-9a-f]{17}\\): .*stopped`));

    // Given the node booted again, when the user runs the bootstrap from the CLI
    await rig().reboot(victim);
    await rig().detach();
    const name = rig().name;
    const cli = await localCli(['bootstrap', '--name', name], 600_000);
    replaceRig(await RigCluster.attach({ name }));
    console.log(
      cli.output
        .split('\n')
        .filter((l) => /finished|error/i.test(l))
        .join('\n'),
    );
    expect(cli.code).toBe(0);
    expect(cli.output).toMatch(/bootstrap finished in/);
    // Then the cluster is whole again, on the same data
    const members = await waitForHealthyReplication(rig());
    expect(members.map((m) => m.name)).toContain(victim);
    expect(await identity()).toBe(systemId);
    await rig().execOk(victim, [
      'sh',
      '-c',
      'test -f "$(runuser -u postgres -- psql -Atc "SHOW data_directory")/pem-ha-test-kept"',
    ]);
    const backends = rig().plan.nodes.filter((n) => n.tier === 'backend').length;
    await eventually('the read endpoint serving from every replica', 60_000, async () => {
      const health = await rig().targetHealth();
      const up = Object.values(health[5433] ?? {}).filter((s) => s === 'UP');
      expect(up).toHaveLength(backends - 1);
    });
    expect((await patroniMembers(rig()))?.length).toBe(backends);
  }, 900_000);
}
