import { ROTATION_HOLDS_LOCK } from '../helpers/fake-lock';
import { failureOf } from '../helpers/fake-runbook';
import {
  FakeUpgradeWorld,
  fakeUpgradeWorld,
  NEW,
  OLD,
  runUpgrade,
  upgradeDefinition,
} from '../helpers/fake-upgrade';

const UPGRADE = upgradeDefinition();
const START = { component: 'postgresql', version: NEW };

let world: FakeUpgradeWorld;
afterEach(() => world?.restore());

/** Nodes a step touched (check excluded: it only reads). */
const touched = (w: FakeUpgradeWorld) =>
  w.events.filter((e) => /^backend-\d (drain|install|restart|verify|undrain|clear-drain)$/.test(e));

describe('rolling upgrade runbook (synthesized definition, run with aws-local-stepfunctions)', () => {
  test('Given a healthy cluster at 15.18, when it upgrades postgresql to 15.20, then replicas go one at a time, then one switchover, then the old primary', async () => {
    world = fakeUpgradeWorld(UPGRADE);

    const plan = (await runUpgrade(UPGRADE, world, START)) as { settings: { version: string } };

    expect(plan.settings.version).toBe(NEW);
    expect(touched(world)).toEqual([
      'backend-2 drain',
      'backend-2 install',
      'backend-2 restart',
      'backend-2 verify',
      'backend-2 undrain',
      'backend-3 drain',
      'backend-3 install',
      'backend-3 restart',
      'backend-3 verify',
      'backend-3 undrain',
      'backend-1 install',
      'backend-1 restart',
      'backend-1 verify',
    ]);
    expect(world.events.filter((e) => e.startsWith('switchover'))).toEqual([
      'switchover backend-1 -> backend-2',
    ]);
    // The switchover comes after the primary's install and before its restart.
    const order = world.events;
    expect(order.indexOf('switchover backend-1 -> backend-2')).toBeGreaterThan(
      order.indexOf('backend-1 install'),
    );
    expect(order.indexOf('switchover backend-1 -> backend-2')).toBeLessThan(
      order.indexOf('backend-1 restart'),
    );
    expect([...world.nodes.values()].map((n) => [n.installed, n.running])).toEqual([
      [NEW, '15.20'],
      [NEW, '15.20'],
      [NEW, '15.20'],
    ]);
    for (const map of ['Upgrade replicas one by one', 'Upgrade the primary']) {
      expect(UPGRADE.States[map]).toMatchObject({ MaxConcurrency: 1 });
    }
  });

  test('Given dryRun, then it ends with the plan and touches no node', async () => {
    world = fakeUpgradeWorld(UPGRADE);

    const plan = (await runUpgrade(UPGRADE, world, {
      ...START,
      version: 'latest',
      dryRun: true,
    })) as Record<string, unknown>;

    expect(plan).toMatchObject({
      settings: { component: 'postgresql', version: NEW },
      leader: 'backend-1',
      switchover: true,
    });
    expect((plan.replicas as { name: string }[]).map((n) => n.name)).toEqual([
      'backend-2',
      'backend-3',
    ]);
    expect(touched(world)).toEqual([]);
  });

  test('Given a run that stopped after one replica, when it runs again, then it skips that replica and finishes the rest', async () => {
    world = fakeUpgradeWorld(UPGRADE, { upgraded: ['backend-2'] });

    await runUpgrade(UPGRADE, world, START);

    expect(touched(world).filter((e) => e.startsWith('backend-2'))).toEqual([]);
    expect(touched(world)[0]).toBe('backend-3 drain');
  });

  test.each([
    [
      { component: 'pgsql', version: NEW },
      'component must be one of postgresql, patroni, etcd, os, settings, pem; got "pgsql"',
    ],
    [
      { component: 'postgresql' },
      'version must be an exact package version (e.g. 15.20-0+deb12u1) or "latest"; got nothing',
    ],
    [{ component: 'os', version: NEW }, 'version must be "latest" for component os'],
    [{ component: 'settings', version: NEW }, 'version must be "latest" for component settings'],
    [{ ...START, maxLagBytes: -1 }, 'maxLagBytes must be a whole number from 0 to'],
    [{ ...START, dryRun: 'yes' }, 'dryRun must be true or false; got "yes"'],
    [{ ...START, nodes: ['backend-2'] }, 'unknown input field nodes'],
  ])(
    'Given input %j, then it halts with InvalidInputError naming the field, touching nothing',
    async (input, message) => {
      world = fakeUpgradeWorld(UPGRADE);

      const error = await failureOf(runUpgrade(UPGRADE, world, input));

      expect(error.name).toBe('InvalidInputError');
      expect(error.message).toContain(message);
      expect(world.events).toEqual([]);
    },
  );

  test('Given a rotation holding the runbook lock, then it ends with RunbookAlreadyRunningError naming the rotation, touching nothing', async () => {
    world = fakeUpgradeWorld(UPGRADE, { lockHeldBy: ROTATION_HOLDS_LOCK });

    const error = await failureOf(runUpgrade(UPGRADE, world, START));

    expect(error.name).toBe('RunbookAlreadyRunningError');
    expect(error.message).toContain('the rotation runbook (execution daily-1');
    expect(world.events).toEqual([]);
  });

  test('Given the install fails on the second replica, then it halts with CommandFailedError naming node and step, clears the drain tags it set, and the primary is never touched', async () => {
    world = fakeUpgradeWorld(UPGRADE, { failOn: { node: 'backend-3', action: 'install' } });

    const error = await failureOf(runUpgrade(UPGRADE, world, START));

    expect(error.name).toBe('CommandFailedError');
    expect(error.message).toContain('backend-3');
    expect(error.message).toContain('pem-ha Replica: install');
    expect(error.message).toContain('dpkg: error processing package postgresql-15');
    expect(error.message).toContain(
      '[halt: one healthy primary, backend-1; drain tags cleared on backend-3]',
    );
    expect(world.events).toContain('backend-3 clear-drain');
    expect(touched(world).filter((e) => e.startsWith('backend-1'))).toEqual([]);
    expect(world.events.some((e) => e.startsWith('switchover'))).toBe(false);
  });

  test('Given drain tags a halted run left on a replica, then a real run clears them before any other node is touched, and a dry run leaves them', async () => {
    world = fakeUpgradeWorld(UPGRADE, { drained: ['backend-3'] });
    await runUpgrade(UPGRADE, world, { ...START, dryRun: true });
    expect(world.events.filter((e) => e.endsWith('clear-drain'))).toEqual([]);

    world = fakeUpgradeWorld(UPGRADE, { drained: ['backend-3'] });
    await runUpgrade(UPGRADE, world, START);
    expect(touched(world)[0]).toBe('backend-3 clear-drain');
  });

  test('Given the drain fails on the first replica, then no further node is touched', async () => {
    world = fakeUpgradeWorld(UPGRADE, { failOn: { node: 'backend-2', action: 'drain' } });

    const error = await failureOf(runUpgrade(UPGRADE, world, START));

    expect(error.name).toBe('CommandFailedError');
    expect(error.message).toContain('pem-ha Replica: drain');
    expect(touched(world)).toEqual([]);
  });

  test('Given a replica that never catches up after its restart, then it halts with VerificationTimedOutError before any switchover', async () => {
    world = fakeUpgradeWorld(UPGRADE, { laggingAfterRestart: 'backend-3' });

    const error = await failureOf(runUpgrade(UPGRADE, world, START));

    expect(error.name).toBe('VerificationTimedOutError');
    expect(error.message).toContain('backend-3');
    expect(world.events.some((e) => e.startsWith('switchover'))).toBe(false);
    expect(touched(world).filter((e) => e.startsWith('backend-1'))).toEqual([]);
  });

  test('Given Patroni answers the switchover with "instead of", then it halts with SwitchoverFailedError', async () => {
    world = fakeUpgradeWorld(UPGRADE, { switchoverInsteadOf: 'backend-3' });

    const error = await failureOf(runUpgrade(UPGRADE, world, START));

    expect(error.name).toBe('SwitchoverFailedError');
    expect(error.message).toContain('instead of');
    expect(touched(world).filter((e) => e.startsWith('backend-1'))).toEqual(['backend-1 install']);
  });

  test('Given SSM does not show an invocation at first, then the run keeps polling and completes', async () => {
    world = fakeUpgradeWorld(UPGRADE, { invisiblePolls: 2 });

    await runUpgrade(UPGRADE, world, START);

    expect([...world.nodes.values()].every((n) => n.installed === NEW)).toBe(true);
  });

  test('Given SSM never shows the invocation, then it halts with CommandTimedOutError at the deadline, touching nothing', async () => {
    world = fakeUpgradeWorld(UPGRADE, { invisiblePolls: Number.MAX_SAFE_INTEGER });

    const error = await failureOf(runUpgrade(UPGRADE, world, START));

    expect(error.name).toBe('CommandTimedOutError');
    expect(touched(world)).toEqual([]);
    expect([...world.nodes.values()].every((n) => n.installed === OLD)).toBe(true);
  });
});

describe('the pem component (synthesized definition, run with aws-local-stepfunctions)', () => {
  const PEM = { component: 'pem', version: NEW };
  /** What a pem run did to the nodes and the ALB, in order (checks and gates left out). */
  const pemSteps = (w: FakeUpgradeWorld) =>
    w.events.filter((e) =>
      /^(backend|web)-\d (install|configure|verify|registered|deregistered)$/.test(e),
    );
  const backend = (name: string) => [`${name} install`, `${name} configure`, `${name} verify`];
  const webHost = (name: string) => [
    `${name} deregistered`,
    `${name} install`,
    `${name} configure`,
    `${name} verify`,
    `${name} registered`,
  ];

  test("Given PEM at the old version, then the primary gets the packages and PEM's configuration first, then each replica, with no switchover and no restart, then each web host is taken out of the ALB, upgraded, and put back, one at a time", async () => {
    world = fakeUpgradeWorld(UPGRADE);

    const plan = (await runUpgrade(UPGRADE, world, PEM)) as { switchover: boolean };

    expect(plan.switchover).toBe(false);
    expect(pemSteps(world)).toEqual([
      ...backend('backend-1'),
      ...backend('backend-2'),
      ...backend('backend-3'),
      ...webHost('web-1'),
      ...webHost('web-2'),
    ]);
    expect(world.events.filter((e) => /switchover|restart|drain/.test(e))).toEqual([]);
    expect(world.webRegistration()).toEqual({ 'web-1': 'healthy', 'web-2': 'healthy' });
    expect([...world.webHosts.values()].map((n) => n.installed)).toEqual([NEW, NEW]);
  });

  test('Given a web host a halted pem run left out of the ALB after upgrading it, then the next run puts it back and touches nothing else', async () => {
    const everyNode = ['backend-1', 'backend-2', 'backend-3', 'web-1', 'web-2'];
    world = fakeUpgradeWorld(UPGRADE, { upgraded: everyNode, webOut: ['web-1'] });

    await runUpgrade(UPGRADE, world, PEM);

    expect(pemSteps(world)).toEqual([
      'web-1 install',
      'web-1 configure',
      'web-1 verify',
      'web-1 registered',
    ]);
    expect(world.webRegistration()).toEqual({ 'web-1': 'healthy', 'web-2': 'healthy' });
  });

  test('Given the verify fails on the second web host, then it halts with CommandFailedError, the first is back in the ALB, and the halt report says the second is out of it', async () => {
    world = fakeUpgradeWorld(UPGRADE, { failOn: { node: 'web-2', action: 'verify' } });

    const error = await failureOf(runUpgrade(UPGRADE, world, PEM));

    expect(error.name).toBe('CommandFailedError');
    expect(error.message).toContain('pem-ha PEM web host: verify');
    expect(error.message).toContain(
      "web host web-2 is out of the ALB's target group: the next pem upgrade run finishes it",
    );
    expect(world.webRegistration()).toEqual({ 'web-1': 'healthy', 'web-2': 'out' });
  });

  test("Given the other web host failing the ALB's health check, then the run halts with ClusterUnhealthyError before taking the first out, and PEM's users keep it", async () => {
    world = fakeUpgradeWorld(UPGRADE, {
      upgraded: ['backend-1', 'backend-2', 'backend-3'],
      webUnhealthy: ['web-2'],
    });

    const error = await failureOf(runUpgrade(UPGRADE, world, PEM));

    expect(error.name).toBe('ClusterUnhealthyError');
    expect(error.message).toContain(
      "no other web host is healthy in the ALB's target group (web-2 unhealthy): taking web-1 out would leave PEM's users without a server",
    );
    expect(pemSteps(world)).toEqual([]);
    expect(world.webRegistration()).toEqual({ 'web-1': 'healthy', 'web-2': 'unhealthy' });
  });
});
