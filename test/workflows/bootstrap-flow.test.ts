import { allStates } from '../../rig/lambdas';
import { resolveIntrinsics } from '../../rig/template';
import {
  definitionOf,
  documentOf,
  execute,
  fakeCluster,
  pseudo,
  resources,
} from '../helpers/fake-runbook';

const bootstrapDefinitionOf = (settings: Record<string, unknown> = {}) =>
  definitionOf('BootstrapStateMachineArn', settings);

const DEFAULT = bootstrapDefinitionOf();

describe('bootstrap runbook (synthesized definition, run with aws-local-stepfunctions)', () => {
  test('Given the default cluster, when it runs, then the steps go etcd, Patroni leader, the replicas side by side, PEM backend, web', async () => {
    const cluster = fakeCluster();
    await expect(execute(DEFAULT, cluster)).resolves.toBeDefined();

    const steps = cluster.sent.map(
      (s) => `${documentOf(s)}:${s.parameters.Action ?? ''}:${s.node}`,
    );
    const firstIndex = (prefix: string) => steps.findIndex((s) => s.startsWith(prefix));
    const lastIndex = (prefix: string) => steps.map((s) => s.startsWith(prefix)).lastIndexOf(true);
    // Every node is prepared, then gets certificates, before any service starts.
    expect(steps.filter((s) => s.startsWith('Common')).length).toBe(8);
    expect(lastIndex('Common')).toBeLessThan(firstIndex('Certificates'));
    expect(steps.filter((s) => s.startsWith('Certificates:install')).length).toBe(8);
    expect(lastIndex('Certificates')).toBeLessThan(firstIndex('Etcd'));
    expect(lastIndex('Etcd')).toBeLessThan(firstIndex('Patroni'));
    // The leader first with Bootstrap=true, then both replicas at once.
    const patroni = cluster.sent.filter((s) => documentOf(s) === 'Patroni');
    expect(patroni.map((s) => [s.node, s.parameters.Bootstrap])).toEqual([
      ['backend-1', 'true'],
      ['backend-2', 'false'],
      ['backend-3', 'false'],
    ]);
    expect(DEFAULT.States['Patroni replicas']).not.toHaveProperty('MaxConcurrency');
    expect(lastIndex('Patroni')).toBeLessThan(firstIndex('PemBackend'));
    expect(lastIndex('PemBackend')).toBeLessThan(firstIndex('PemWeb'));
    expect(
      cluster.sent.filter((s) => documentOf(s) === 'PemWeb').map((s) => s.parameters.AgentId),
    ).toEqual(['101', '102']);
  });

  test('Given a replica whose Patroni document fails, when it runs, then it stops in Bootstrap failed with the named error and the node, starting no later step', async () => {
    const cluster = fakeCluster({ failOn: { document: 'Patroni', node: 'backend-2' } });

    const error = await execute(DEFAULT, cluster).then(
      () => {
        throw new Error('the run succeeded');
      },
      (e: unknown) => e as Error & { cause: Error },
    );

    expect(error.name).toBe('ExecutionError');
    expect(error.cause.name).toBe('CommandFailedError');
    expect(error.cause.message).toContain('backend-2');
    expect(error.cause.message).toContain('patroni would not start');
    // The replicas were started side by side; no later step starts (not the
    // stanza, not PEM).
    const touched = cluster.sent.map((s) => `${documentOf(s)}:${s.node}`);
    expect(touched.some((s) => s.startsWith('Pem') || s.startsWith('Backup'))).toBe(false);
    expect(touched.filter((s) => s.startsWith('Patroni')).sort()).toEqual([
      'Patroni:backend-1',
      'Patroni:backend-2',
      'Patroni:backend-3',
    ]);
  });

  test('Given a node not yet registered with SSM, when it runs, then the send is retried and the run succeeds', async () => {
    const cluster = fakeCluster({ notManagedOnce: 'etcd-2' });
    await expect(execute(DEFAULT, cluster)).resolves.toBeDefined();
    expect(
      cluster.sent.filter((s) => s.node === 'etcd-2' && documentOf(s) === 'Common'),
    ).toHaveLength(1);
  });

  test('Given certificates that are all still valid, when it runs, then nothing is installed', async () => {
    const cluster = fakeCluster({ signCount: 0 });
    await execute(DEFAULT, cluster);
    expect(cluster.sent.filter((s) => s.parameters.Action === 'install')).toEqual([]);
  });

  test('Given PEM disabled, then the runbook has no PEM steps', () => {
    const definition = bootstrapDefinitionOf({ pemEnabled: false });
    expect(Object.keys(definition.States)).not.toContain('PEM backends');
    expect(Object.keys(definition.States)).not.toContain('PEM web hosts');
  });

  test('Every task has a timeout and every failure path ends in Bootstrap failed', () => {
    for (const [name, state] of allStates(DEFAULT.States)) {
      if (state.Type === 'Task')
        expect({ name, timeout: state.TimeoutSeconds }).toEqual({ name, timeout: 90 });
      if (state.Type === 'Map')
        expect({ name, catch: state.Catch }).toEqual({
          name,
          catch: [expect.objectContaining({ Next: 'Bootstrap failed' })],
        });
    }
    expect(DEFAULT.States['Bootstrap failed']).toMatchObject({
      Type: 'Fail',
      ErrorPath: '$.failure.Error',
      CausePath: '$.failure.Cause',
    });
  });
});

test('resolveIntrinsics joins and references like CloudFormation', () => {
  expect(
    resolveIntrinsics(
      {
        'Fn::Join': [
          '',
          ['a-', { Ref: 'X' }, '-', { 'Fn::GetAtt': ['Y', 'Arn'] }, '-', { Ref: 'AWS::Region' }],
        ],
      },
      resources,
      pseudo,
    ),
  ).toBe('a-ref:X-arn:aws:lambda:local-1:000000000000:function:Y-local-1');
});
