/**
 * One runbook at a time, on the cluster suite's rig (called from
 * cluster.test.ts, which owns the rig): runbooks started while another holds
 * the cluster's lock, in this process and from two `npm run local` processes.
 */
import type { RigCluster } from '../../rig/cluster';
import type { RunbookRun } from '../../rig/runbook';
import { recordingRun } from '../helpers/rig';
import { localCli } from './runbook-faults';

type RunbookError = Error & { cause?: Error };
const failureOf = (run: Promise<unknown>) =>
  run.then(
    () => undefined,
    (error: RunbookError) => error.cause ?? error,
  );

/**
 * A run that stops before its first node command until released: it holds
 * the lock (its first state) and has touched nothing. `sent` records every
 * node command a run sends.
 */
function heldRun() {
  let release!: () => void;
  let reached!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const atFirstCommand = new Promise<void>((resolve) => (reached = resolve));
  const run: RunbookRun = {
    wrapTask: (state, handler) =>
      !state.endsWith(': send')
        ? handler
        : ((async (input: never) => {
            reached();
            await released;
            return handler(input);
          }) as never),
  };
  return { run, atFirstCommand, release };
}

export function runbookLockTests(rig: () => RigCluster): void {
  test('one runbook at a time: a rotation while an upgrade runs, and a bootstrap or an upgrade while a rotation runs, end with RunbookAlreadyRunningError naming the holder, touching nothing', async () => {
    // Given an upgrade (dry run) holding the lock, stopped before its first node command
    const upgrade = heldRun();
    const upgrading = rig().upgrade(
      { component: 'etcd', version: 'latest', dryRun: true },
      upgrade.run,
    );
    await upgrade.atFirstCommand;
    // When the rotation starts
    const sent: string[] = [];
    const refusedRotation = await failureOf(rig().rotateCertificates(recordingRun(sent)));
    // Then it ends at once, naming the upgrade, and sends nothing
    expect(refusedRotation?.name).toBe('RunbookAlreadyRunningError');
    expect(refusedRotation?.message).toMatch(
      /^the upgrade runbook \(execution [0-9a-f-]{36}, since /,
    );
    expect(sent).toEqual([]);
    upgrade.release();
    await upgrading;

    // Given a rotation holding the lock (the upgrade ended: its lock is taken over)
    const rotation = heldRun();
    const rotating = rig().rotateCertificates(rotation.run);
    await rotation.atFirstCommand;
    // When the bootstrap and an upgrade start
    const refusedBootstrap = await failureOf(
      rig().runRunbook('BootstrapStateMachineArn', recordingRun(sent)),
    );
    const refusedUpgrade = await failureOf(
      rig().upgrade({ component: 'etcd', version: 'latest', dryRun: true }, recordingRun(sent)),
    );
    // Then both end at once naming the rotation, and nothing is sent to any node
    for (const refused of [refusedBootstrap, refusedUpgrade]) {
      expect(refused?.name).toBe('RunbookAlreadyRunningError');
      expect(refused?.message).toContain('the rotation runbook (execution');
    }
    expect(sent).toEqual([]);
    rotation.release();
    await rotating;
  }, 600_000);

  test('two upgrades started from two `npm run local` processes within a second: exactly one runs, the other ends with RunbookAlreadyRunningError, and no node is asked twice', async () => {
    // Both processes call this process's endpoint (it serves the rig): count what reaches the nodes.
    const ssm = rig().aws.ssm;
    const send = ssm.sendCommand.bind(ssm);
    const asked: string[] = [];
    ssm.sendCommand = (input) => {
      asked.push(`${input.DocumentName} ${input.InstanceIds?.join(',')}`);
      return send(input);
    };
    try {
      const args = [
        'upgrade',
        '--name',
        rig().name,
        '--upgrade',
        JSON.stringify({ component: 'etcd', version: 'latest', dryRun: true }),
      ];
      const [first, second] = await Promise.all([localCli(args, 300_000), localCli(args, 300_000)]);

      const outcomes = [first, second].map((run) =>
        run.code === 0
          ? 'ran'
          : /RunbookAlreadyRunningError.*the upgrade runbook \(execution/.test(
                run.output.replace(/\n/g, ' '),
              )
            ? 'refused'
            : `failed otherwise: ${run.output.slice(-2000)}`,
      );
      expect(outcomes.sort()).toEqual(['ran', 'refused']);
      // The dry run asks each etcd member once to check itself.
      expect(asked).toHaveLength(rig().plan.nodes.filter((n) => n.tier === 'etcd').length);
      expect(new Set(asked).size).toBe(asked.length);
    } finally {
      ssm.sendCommand = send;
    }
  }, 600_000);
}
