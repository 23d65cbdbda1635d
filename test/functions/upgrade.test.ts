import type { PatroniMember } from '../../functions/lib/patroni';
import { runUpgradeAction, UpgradeDependencies } from '../../functions/upgrade/actions';
import { parseKeyValues, planUpgrade, upstreamVersion } from '../../functions/upgrade/plan';
import { preflight } from '../../functions/upgrade/preflight';
import { awaitMember, switchover } from '../../functions/upgrade/steps';
import { parseRequest } from '../../functions/upgrade/request';
import {
  ec2,
  elb,
  HEALTHY as healthy,
  INVENTORY as inventory,
  upgradeClients as clients,
} from '../helpers/upgrade-clients';

afterEach(() => {
  elb.reset();
  ec2.reset();
});

const MAX_LAG = 1048576;
/** The replica: replay frozen 41 s, its WAL receiver still running (/cluster lag 0). */
const FROZEN = { bytes: 57794208, delaySeconds: 41 };
const FROZEN_DETAIL =
  'backend-3 replays 57794208 bytes behind the leader (receives 0 bytes behind; replay delay 41 s; maxLagBytes 1048576)';
const caughtUp: PatroniMember[] = healthy.map((m) => ({
  ...m,
  lag: m.lag === undefined ? m.lag : 0,
}));

describe('upgrade steps', () => {
  test('Given synchronous mode, when it switches over, then the synchronous standby is the candidate', async () => {
    const { value, sent } = clients(healthy);
    const result = await switchover(value, inventory, 'backend-1', MAX_LAG);
    expect(result.candidate).toBe('backend-3');
    expect(sent).toEqual([
      'POST 10.0.0.1/switchover {"leader":"backend-1","candidate":"backend-3"}',
    ]);
  });

  test("Given the synchronous standby's replay lags behind, when it switches over, then the replica that passes the replay rule is the candidate", async () => {
    const { value, sent } = clients(caughtUp, { replay: { 'backend-3': FROZEN } });
    const result = await switchover(value, inventory, 'backend-1', MAX_LAG);
    expect(result.candidate).toBe('backend-2');
    expect(sent).toEqual([
      'POST 10.0.0.1/switchover {"leader":"backend-1","candidate":"backend-2"}',
    ]);
  });

  test('Given no synchronous standby, when it switches over, then the replica least behind in replay is the candidate', async () => {
    const asyncOnly = caughtUp.map((m) => ({
      ...m,
      role: m.role === 'leader' ? 'leader' : 'replica',
    }));
    const { value } = clients(asyncOnly, {
      replay: { 'backend-2': { bytes: 5000 }, 'backend-3': { bytes: 40 } },
    });
    await expect(switchover(value, inventory, 'backend-1', MAX_LAG)).resolves.toMatchObject({
      candidate: 'backend-3',
    });
  });

  test('Given no replica passes the replay rule, then SwitchoverFailedError names why each was refused and nothing is sent', async () => {
    const { value, sent } = clients(caughtUp, {
      replay: { 'backend-2': { bytes: 0, paused: true }, 'backend-3': FROZEN },
    });
    const error = await switchover(value, inventory, 'backend-1', MAX_LAG).catch((e: Error) => e);
    expect(error).toMatchObject({ name: 'SwitchoverFailedError' });
    expect((error as Error).message).toBe(
      "no replica can take over from backend-1: backend-2's replay is paused (pg_wal_replay_pause): it replays 0 bytes behind the leader, receives 0 bytes behind; " +
        FROZEN_DETAIL,
    );
    expect(sent).toEqual([]);
  });

  test('Given Patroni answers 503 "status unknown", then the switchover is not a failure (the leader loop decides)', async () => {
    const { value } = clients(healthy, {
      answer: { status: 503, body: 'Switchover status unknown' },
    });
    await expect(switchover(value, inventory, 'backend-1', MAX_LAG)).resolves.toMatchObject({
      candidate: 'backend-3',
    });
  });

  test.each([
    [{ status: 200, body: 'Switched over to "backend-2" instead of "backend-3"' }, 'instead of'],
    [{ status: 412, body: 'candidate name does not match' }, 'refused the switchover (412)'],
  ])('Given Patroni answers %j, then SwitchoverFailedError', async (answer, message) => {
    const { value } = clients(healthy, { answer });
    const error = await switchover(value, inventory, 'backend-1', MAX_LAG).catch((e: Error) => e);
    expect(error).toMatchObject({ name: 'SwitchoverFailedError' });
    expect((error as Error).message).toContain(message);
  });

  test('Given the leader is not the planned one, then nothing is sent', async () => {
    const { value, sent } = clients(healthy);
    await expect(switchover(value, inventory, 'backend-2', MAX_LAG)).rejects.toMatchObject({
      name: 'SwitchoverFailedError',
    });
    expect(sent).toEqual([]);
  });

  test('Given a restarted replica that /cluster shows at lag 0 but whose replay is 57 MB behind, when awaiting it, then it is not ready and the detail names both figures', async () => {
    const { value } = clients(caughtUp, { replay: { 'backend-3': FROZEN } });
    const look = await awaitMember(value, inventory, inventory.backend[2], MAX_LAG);
    expect(look.ready).toBe(false);
    expect(look.detail).toContain(`backend-3: ${FROZEN_DETAIL}`);
  });

  test('Given the replica replays what it received, when awaiting it, then it is ready', async () => {
    const { value } = clients(caughtUp, { replay: { 'backend-3': { bytes: 100 } } });
    const look = await awaitMember(value, inventory, inventory.backend[2], MAX_LAG);
    expect(look).toMatchObject({ ready: true });
    expect(look.detail).toContain('backend-3 receives 0 and replays 100 bytes behind the leader');
  });
});

describe('upgrade preflight (replay rule) and gate', () => {
  const request = {
    component: 'postgresql' as const,
    version: 'latest',
    maxLagBytes: MAX_LAG,
    maxTransactionSeconds: 60,
    dryRun: false,
  };

  test('Given a replica whose replay is frozen while /cluster says lag 0, then PreflightFailedError names it and both figures', async () => {
    const { value, sent } = clients(caughtUp, { replay: { 'backend-3': FROZEN } });
    const error = await preflight(value, inventory, request).catch((e: Error) => e);
    expect(error).toMatchObject({
      name: 'PreflightFailedError',
      message: `preflight: ${FROZEN_DETAIL}; no node was touched`,
    });
    expect(sent).toEqual([]);
  });

  test('Given a replica whose replay is paused, then PreflightFailedError says so', async () => {
    const { value } = clients(caughtUp, { replay: { 'backend-2': { bytes: 0, paused: true } } });
    await expect(preflight(value, inventory, request)).rejects.toThrow(
      "preflight: backend-2's replay is paused (pg_wal_replay_pause)",
    );
  });

  test('Given drain tags an earlier halted run left, then preflight passes, lists that node, and orders replicas by replay lag', async () => {
    const tagged = caughtUp.map((m) =>
      m.name === 'backend-2' ? { ...m, tags: { noloadbalance: true, nosync: true } } : m,
    );
    const { value } = clients(tagged, {
      replay: { 'backend-2': { bytes: 10 }, 'backend-3': { bytes: 900 } },
    });
    const result = await preflight(value, inventory, request);
    expect(result.drained).toEqual([inventory.backend[1]]);
    expect(result.replicaOrder).toEqual(['backend-3', 'backend-2']);
  });

  const deps = (value: ReturnType<typeof clients>['value']): UpgradeDependencies => ({
    clients: async () => value,
    defaults: { maxLagBytes: MAX_LAG, maxTransactionSeconds: 300 },
  });

  test('Given a healthy cluster, when the gate runs between nodes, then it returns the leader and timeline', async () => {
    const { value } = clients(caughtUp);
    await expect(
      runUpgradeAction({ action: 'gate', inventory, maxLagBytes: MAX_LAG }, deps(value)),
    ).resolves.toEqual({ leader: 'backend-1', timeline: 1 });
  });

  test('Given a replica behind in replay, when the gate runs, then ClusterUnhealthyError names it with both figures', async () => {
    const { value } = clients(caughtUp, { replay: { 'backend-3': FROZEN } });
    await expect(
      runUpgradeAction({ action: 'gate', inventory, maxLagBytes: MAX_LAG }, deps(value)),
    ).rejects.toMatchObject({
      name: 'ClusterUnhealthyError',
      message: `the cluster is not healthy: ${FROZEN_DETAIL}`,
    });
  });

  test('Given maxLagBytes that is not a whole number, then the gate refuses before reading anything', async () => {
    const { value } = clients(caughtUp);
    await expect(
      runUpgradeAction({ action: 'gate', inventory, maxLagBytes: -1 }, deps(value)),
    ).rejects.toMatchObject({
      name: 'InvalidRequestError',
      message: 'maxLagBytes must be a whole number of bytes, 0 or more; given -1',
    });
  });
});

describe('upgrade plan', () => {
  const preflight = {
    request: {
      component: 'postgresql' as const,
      version: 'latest',
      maxLagBytes: 1000,
      maxTransactionSeconds: 60,
      dryRun: false,
    },
    leader: 'backend-1',
    timeline: 1,
    replicaOrder: ['backend-3', 'backend-2'],
    checkNodes: inventory.backend,
    drained: [],
  };
  const check = (name: string, lines: string) => ({
    name,
    stdout: `[pem-ha 10:00:00] log\n${lines}`,
  });

  test('Given every node resolves latest to one version, then the plan pins it and keeps the order', () => {
    const plan = planUpgrade(inventory, preflight, [
      check(
        'backend-1',
        'target=15.20-0+deb12u1\ninstalled=15.18-0+deb12u1\noldest_transaction_seconds=5\nrunning=15.18',
      ),
      check(
        'backend-2',
        'target=15.20-0+deb12u1\ninstalled=15.20-0+deb12u1\nrunning=15.20\nrunning_stale=false\ndrained=false',
      ),
      check('backend-3', 'target=15.20-0+deb12u1\ninstalled=15.18-0+deb12u1\nrunning=15.18'),
    ]);
    expect(plan.settings.version).toBe('15.20-0+deb12u1');
    expect(plan.replicas.map((n) => n.name)).toEqual(['backend-3']);
    expect(plan.primary.map((n) => n.name)).toEqual(['backend-1']);
    expect(plan.alreadyAtTarget).toEqual(['backend-2']);
  });

  test('Given nodes that resolve latest differently, then PreflightFailedError names them', () => {
    expect(() =>
      planUpgrade(inventory, preflight, [
        check('backend-1', 'target=15.20-0+deb12u1'),
        check('backend-2', 'target=15.19-0+deb12u1'),
        check('backend-3', 'target=15.20-0+deb12u1'),
      ]),
    ).toThrow(/do not resolve latest to one version \(backend-1 15.20-0\+deb12u1, backend-2 15.19/);
  });

  test('Given a transaction older than the bound on the primary, then PreflightFailedError', () => {
    expect(() =>
      planUpgrade(inventory, preflight, [
        check('backend-1', 'target=1\noldest_transaction_seconds=61'),
        check('backend-2', 'target=1'),
        check('backend-3', 'target=1'),
      ]),
    ).toThrow('open 61 s (maxTransactionSeconds 60)');
  });

  test('Given a node upgraded but still drained, then it is planned again (so it returns to the read endpoint)', () => {
    const plan = planUpgrade(inventory, preflight, [
      check('backend-1', 'target=2-1\ninstalled=2-1\nrunning=2'),
      check('backend-2', 'target=2-1\ninstalled=2-1\nrunning=2\ndrained=true'),
      check('backend-3', 'target=2-1\ninstalled=2-1\nrunning=2'),
    ]);
    expect(plan.replicas.map((n) => n.name)).toEqual(['backend-2']);
    expect(plan.switchover).toBe(false);
  });

  test('Given settings that wait for a restart on some members, then only those are planned, the primary through the switchover', () => {
    const settings = {
      ...preflight,
      request: { ...preflight.request, component: 'settings' as const },
    };
    const plan = planUpgrade(inventory, settings, [
      check('backend-1', 'target=latest\npending_restart=true\nrunning=unknown'),
      check('backend-2', 'target=latest\npending_restart=false\nrunning=unknown'),
      check('backend-3', 'target=latest\npending_restart=true\nrunning=unknown'),
    ]);
    expect(plan.replicas.map((n) => n.name)).toEqual(['backend-3']);
    expect(plan.primary.map((n) => n.name)).toEqual(['backend-1']);
    expect(plan.switchover).toBe(true);
    expect(plan.alreadyAtTarget).toEqual(['backend-2']);
  });

  test('Given no member waits for a restart, then the settings plan touches nothing and switches nothing', () => {
    const settings = {
      ...preflight,
      request: { ...preflight.request, component: 'settings' as const },
    };
    const plan = planUpgrade(
      inventory,
      settings,
      ['backend-1', 'backend-2', 'backend-3'].map((name) =>
        check(name, 'target=latest\npending_restart=false'),
      ),
    );
    expect([...plan.replicas, ...plan.primary]).toEqual([]);
    expect(plan.switchover).toBe(false);
  });

  test('Debian versions reduce to what programs report', () => {
    expect(upstreamVersion('1:15.20-0+deb12u1')).toBe('15.20');
    expect(upstreamVersion('15.10-1.pgdg120+1')).toBe('15.10');
    expect(parseKeyValues('noise\nkey=a=b\n')).toEqual({ key: 'a=b' });
  });
});

describe('the pem component in a request', () => {
  const defaults = { maxLagBytes: 1000, maxTransactionSeconds: 60 };

  test('Given a stack without PEM, then a pem run is refused before anything is read, saying why', () => {
    expect(() => parseRequest({ component: 'pem', version: 'latest' }, defaults)).toThrow(
      expect.objectContaining({
        name: 'InvalidInputError',
        message: expect.stringContaining(
          'component pem needs PEM, and this stack was deployed without it',
        ),
      }),
    );
  });

  test('Given a stack with PEM, then a pem run to an exact edb-pem version is accepted', () => {
    expect(
      parseRequest({ component: 'pem', version: '10.2.0-1' }, { ...defaults, pem: true }),
    ).toMatchObject({ component: 'pem', version: '10.2.0-1', dryRun: false });
  });
});
