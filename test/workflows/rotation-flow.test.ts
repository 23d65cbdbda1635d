import { allStates } from '../../rig/lambdas';
import { definitionOf, documentOf, execute, failureOf, fakeCluster } from '../helpers/fake-runbook';

const ROTATION = definitionOf('RotationStateMachineArn');

describe('certificate rotation runbook (synthesized definition, run with aws-local-stepfunctions)', () => {
  test('Given a healthy cluster led by backend-2, when it runs, then nodes go one at a time: etcd, replicas, the primary, web', async () => {
    const cluster = fakeCluster({ leader: 'backend-2' });

    await execute(ROTATION, cluster);

    const requested = cluster.sent
      .filter((s) => s.parameters.Action === 'request')
      .map((s) => s.node);
    expect(requested).toEqual([
      'etcd-1',
      'etcd-2',
      'etcd-3',
      'backend-1',
      'backend-3',
      'backend-2',
      'web-1',
      'web-2',
    ]);
    // The schedule's runs use the configured threshold.
    expect(new Set(cluster.sent.map((s) => s.parameters.RenewBeforeDays))).toEqual(new Set(['30']));
    expect(ROTATION.States['Rotate node by node']).toMatchObject({ MaxConcurrency: 1 });
  });

  test('Given a renewal threshold in the input, then every node is asked with it', async () => {
    const cluster = fakeCluster();
    await execute(ROTATION, cluster, { renewBeforeDays: 3650 });
    expect(new Set(cluster.sent.map((s) => s.parameters.RenewBeforeDays))).toEqual(
      new Set(['3650']),
    );
  });

  test.each([[0], [3651], ['thirty'], [2.5]])(
    'Given renewBeforeDays %p, then it fails with InvalidInputError naming the field, touching no node',
    async (value) => {
      const cluster = fakeCluster();
      const error = await failureOf(execute(ROTATION, cluster, { renewBeforeDays: value }));
      expect(error.name).toBe('InvalidInputError');
      expect(error.message).toContain(
        `renewBeforeDays must be a whole number of days from 1 to 3650; got ${JSON.stringify(value)}`,
      );
      expect(cluster.sent).toEqual([]);
    },
  );

  test('Given a misspelt field ({"renewBeforeDay": 3650}), then it fails with InvalidInputError naming it and the field it takes, touching no node', async () => {
    const cluster = fakeCluster();
    const error = await failureOf(execute(ROTATION, cluster, { renewBeforeDay: 3650 }));
    expect(error.name).toBe('InvalidInputError');
    expect(error.message).toBe(
      'unknown field "renewBeforeDay": the rotation runbook takes only renewBeforeDays, as in {"renewBeforeDays": 30}',
    );
    expect(cluster.sent).toEqual([]);
  });

  test('Given a backend Patroni reports stopped, then it fails with ClusterUnhealthyError before touching any node', async () => {
    const cluster = fakeCluster({ stopped: ['backend-3'] });
    const error = await failureOf(execute(ROTATION, cluster));
    expect(error.name).toBe('ClusterUnhealthyError');
    expect(error.message).toContain('backend-3 is not a running member');
    expect(cluster.sent).toEqual([]);
  });

  test('Given a failed install on a replica, then the run stops with the named error and the node, and no later node is touched', async () => {
    const cluster = fakeCluster({
      failOn: { document: 'Certificates', action: 'install', node: 'backend-2' },
    });
    const error = await failureOf(execute(ROTATION, cluster));
    expect(error.name).toBe('CommandFailedError');
    expect(error.message).toContain('backend-2');
    const touched = new Set(cluster.sent.map((s) => s.node));
    expect(touched.has('web-1')).toBe(false);
  });

  test('Given a failover during the run, then it ends with LeaderChangedError', async () => {
    const cluster = fakeCluster({ leader: 'backend-1', leaderAfter: 'backend-2' });
    const error = await failureOf(execute(ROTATION, cluster));
    expect(error.name).toBe('LeaderChangedError');
    expect(error.message).toContain('before backend-1 on timeline 1, now backend-2 on timeline 2');
  });

  test('Given nothing close to expiry, then nothing is installed', async () => {
    const cluster = fakeCluster({ signCount: 0 });
    await execute(ROTATION, cluster);
    expect(cluster.sent.filter((s) => s.parameters.Action === 'install')).toEqual([]);
    expect(cluster.sent.every((s) => documentOf(s) === 'Certificates')).toBe(true);
  });

  test('Every task has a timeout and every failure path after the lock ends in Rotation failed', () => {
    for (const [name, state] of allStates(ROTATION.States)) {
      if (state.Type === 'Task')
        expect({ name, timeout: state.TimeoutSeconds }).toEqual({ name, timeout: 90 });
    }
    // A refused input or lock ends the run at once: nothing was touched.
    const first = ['Check input', 'Take the runbook lock'];
    expect(ROTATION.StartAt).toBe(first[0]);
    expect(ROTATION.States[first[0]].Next).toBe(first[1]);
    for (const name of first) expect(ROTATION.States[name].Catch).toBeUndefined();
    for (const [name, state] of Object.entries(ROTATION.States)) {
      if (first.includes(name)) continue;
      if (state.Type === 'Task' || state.Type === 'Map')
        expect({ name, catch: state.Catch }).toEqual({
          name,
          catch: [expect.objectContaining({ Next: 'Rotation failed' })],
        });
    }
  });
});

describe('root rollover runbook (synthesized definition, run with aws-local-stepfunctions)', () => {
  const ROLLOVER = definitionOf('RootRolloverStateMachineArn');

  test('Given a healthy cluster, then every node trusts both roots, then every leaf is reissued, then every node trusts the new root only, one node at a time', async () => {
    const cluster = fakeCluster({ leader: 'backend-3' });

    await execute(ROLLOVER, cluster);

    const order = [
      'etcd-1',
      'etcd-2',
      'etcd-3',
      'backend-1',
      'backend-2',
      'backend-3',
      'web-1',
      'web-2',
    ];
    const trustInstalls = (bundle: string) =>
      cluster.sent.filter((s) => s.parameters.Bundle === bundle).map((s) => s.node);
    expect(trustInstalls('Ym90aA==')).toEqual(order);
    expect(trustInstalls('bmV3')).toEqual(order);
    const requests = cluster.sent.filter((s) => s.parameters.Action === 'request');
    expect(requests.map((s) => s.node)).toEqual(order);
    expect(new Set(requests.map((s) => s.parameters.RenewBeforeDays))).toEqual(new Set(['3650']));
    // Phases do not overlap: trust both, reissue, trust new only.
    const index = (predicate: (s: (typeof cluster.sent)[number]) => boolean) =>
      cluster.sent.map(predicate);
    const lastBoth = index((s) => s.parameters.Bundle === 'Ym90aA==').lastIndexOf(true);
    const firstRequest = index((s) => s.parameters.Action === 'request').indexOf(true);
    const lastRequest = index((s) => s.parameters.Action === 'request').lastIndexOf(true);
    const firstNew = index((s) => s.parameters.Bundle === 'bmV3').indexOf(true);
    expect(lastBoth).toBeLessThan(firstRequest);
    expect(lastRequest).toBeLessThan(firstNew);
    expect(cluster.caSteps).toEqual(['New root and issuing CA', 'Retire the old root']);
    for (const map of [
      'Trust both roots',
      'Reissue every leaf from the new root',
      'Trust the new root only',
    ])
      expect(ROLLOVER.States[map]).toMatchObject({ MaxConcurrency: 1 });
  });

  test('Given a failed trust install on etcd-2, then the rollover stops there: no leaf is reissued and the old root is not retired', async () => {
    const cluster = fakeCluster({
      failOn: { document: 'Certificates', action: 'install', node: 'etcd-2' },
    });
    const error = await failureOf(execute(ROLLOVER, cluster));
    expect(error.name).toBe('CommandFailedError');
    expect(cluster.sent.some((s) => s.parameters.Action === 'request')).toBe(false);
    expect(cluster.caSteps).toEqual(['New root and issuing CA']);
  });
});
