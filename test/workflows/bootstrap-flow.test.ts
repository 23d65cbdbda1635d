import { StateMachine } from 'aws-local-stepfunctions';
import { allStates } from '../../rig/lambdas';
import { resolveIntrinsics, stateMachineDefinition } from '../../rig/template';
import { synthStack } from '../helpers/synth';

/** Instance ids and volume ids become recognisable names; function ARNs keep their logical id. */
const resources = {
  ref: (logicalId: string) => `ref:${logicalId}`,
  getAtt: (logicalId: string, attribute: string) =>
    attribute === 'Arn'
      ? `arn:aws:lambda:local-1:000000000000:function:${logicalId}`
      : `${logicalId}.${attribute}`,
};
const pseudo = { region: 'local-1', accountId: '000000000000' };

function bootstrapDefinitionOf(settings: Record<string, unknown> = {}) {
  const { template } = synthStack(settings);
  return stateMachineDefinition(
    template.toJSON() as never,
    'BootstrapStateMachineArn',
    resources,
    pseudo,
  );
}

type LocalHandlers = NonNullable<
  NonNullable<
    NonNullable<Parameters<StateMachine['run']>[1]>['overrides']
  >['taskResourceLocalHandlers']
>;

class NamedError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

interface Sent {
  readonly document: string;
  readonly node: string;
  readonly parameters: Record<string, string>;
}

const documentOf = (sent: Sent) =>
  sent.document.replace(/^ref:NodeDocuments/, '').replace(/[0-9A-F]{8}$/, '');

/**
 * Fake task handlers standing in for the Lambdas: commands finish on their
 * second poll; `failOn` makes one document fail on one node.
 */
function fakeCluster(
  options: {
    failOn?: { document: string; node: string };
    signCount?: number;
    notManagedOnce?: string;
  } = {},
) {
  const sent: Sent[] = [];
  const running = new Map<string, Sent & { polls: number }>();
  let nextId = 0;
  let notManaged = options.notManagedOnce;
  interface Payload {
    action: 'start' | 'poll';
    node: { name: string; instanceId: string };
    document: string;
    parameters: Record<string, string>;
    command: { commandId: string };
  }
  const nodeCommand = async (payload: Payload) => {
    if (payload.action === 'start') {
      if (notManaged === payload.node.name) {
        notManaged = undefined;
        throw new NamedError('NodeNotManagedError', `${payload.node.name}: not managed yet`);
      }
      const record = {
        document: payload.document,
        node: payload.node.name,
        parameters: payload.parameters,
      };
      sent.push(record);
      const commandId = `cmd-${++nextId}`;
      running.set(commandId, { ...record, polls: 0 });
      return {
        commandId,
        instanceId: payload.node.instanceId,
        nodeName: payload.node.name,
        deadline: 0,
      };
    }
    const command = running.get(payload.command.commandId)!;
    command.polls += 1;
    if (command.polls < 2) return { state: 'running', status: 'InProgress' };
    const { failOn } = options;
    if (failOn && documentOf(command) === failOn.document && command.node === failOn.node) {
      throw new NamedError(
        'CommandFailedError',
        `${command.node} (i-0): failed; status Failed, exit code 1; stderr tail:\npatroni would not start`,
      );
    }
    return { state: 'succeeded', stdoutTail: '' };
  };
  const handlers: LocalHandlers = {};
  const definitionStates = (definition: { States: Record<string, Record<string, unknown>> }) =>
    allStates(definition.States).filter(([, state]) => state.Type === 'Task');
  const bind = (definition: { States: Record<string, Record<string, unknown>> }) => {
    for (const [name] of definitionStates(definition)) {
      handlers[name] = (async (input: unknown) => {
        const { Payload } = input as { Payload: Payload };
        if (name === 'Ensure cluster CA') return { Payload: { created: true } };
        if (name === 'Sign certificates') {
          const count = options.signCount ?? 1;
          return { Payload: { count, identities: [], bundle: count ? 'YnVuZGxl' : '-' } };
        }
        return { Payload: await nodeCommand(Payload) };
      }) as unknown as LocalHandlers[string];
    }
    return handlers;
  };
  return { sent, bind };
}

async function execute(
  definition: ReturnType<typeof bootstrapDefinitionOf>,
  cluster: ReturnType<typeof fakeCluster>,
) {
  const waits = Object.fromEntries(
    allStates(definition.States)
      .filter(([, s]) => s.Type === 'Wait')
      .map(([n]) => [n, 0]),
  );
  const retries = Object.fromEntries(
    allStates(definition.States)
      .filter(([, s]) => s.Retry)
      .map(([n]) => [n, 0]),
  );
  const machine = new StateMachine(definition as never);
  return machine.run(
    {},
    {
      overrides: {
        taskResourceLocalHandlers: cluster.bind(definition),
        waitTimeOverrides: waits,
        retryIntervalOverrides: retries,
      },
    },
  ).result;
}

const DEFAULT = bootstrapDefinitionOf();

describe('bootstrap runbook (synthesized definition, run with aws-local-stepfunctions)', () => {
  test('Given the default cluster, when it runs, then the steps go etcd, Patroni leader, replicas one by one, PEM backend, web', async () => {
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
    // The leader first with Bootstrap=true, then each replica in turn.
    const patroni = cluster.sent.filter((s) => documentOf(s) === 'Patroni');
    expect(patroni.map((s) => [s.node, s.parameters.Bootstrap])).toEqual([
      ['backend-1', 'true'],
      ['backend-2', 'false'],
      ['backend-3', 'false'],
    ]);
    expect(lastIndex('Patroni')).toBeLessThan(firstIndex('PemBackend'));
    expect(lastIndex('PemBackend')).toBeLessThan(firstIndex('PemWeb'));
    expect(
      cluster.sent.filter((s) => documentOf(s) === 'PemWeb').map((s) => s.parameters.AgentId),
    ).toEqual(['4', '5']);
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
    // No later step starts. (Within the replicas Map, Step Functions starts no
    // further iteration after a failure; aws-local-stepfunctions 3 still runs
    // queued ones, so that guarantee is checked on the definition below.)
    const touched = cluster.sent.map((s) => `${documentOf(s)}:${s.node}`);
    expect(touched.some((s) => s.startsWith('Pem'))).toBe(false);
    expect(DEFAULT.States['Patroni replicas']).toMatchObject({ MaxConcurrency: 1 });
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
