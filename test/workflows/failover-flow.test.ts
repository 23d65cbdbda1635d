import type { PatroniMember } from '../../functions/lib/patroni';
import { type BackendState, fakeFailover } from '../helpers/fake-failover';
import { definitionOf, documentOf, execute, failureOf, type Sent } from '../helpers/fake-runbook';

const FAILOVER = definitionOf('FailoverStateMachineArn');
const addressOf = (name: string) =>
  (
    FAILOVER.States.Inventory as { Result: { backend: { name: string; address: string }[] } }
  ).Result.backend.find((node) => node.name === name)?.address;

const step = (s: Sent) => `${documentOf(s)} ${s.parameters.Action} ${s.node}`;

const members = (sync?: string): PatroniMember[] => [
  { name: 'backend-1', role: 'leader', state: 'running' },
  {
    name: 'backend-2',
    role: sync === 'backend-2' ? 'sync_standby' : 'replica',
    state: 'streaming',
    lag: 0,
  },
  {
    name: 'backend-3',
    role: sync === 'backend-3' ? 'sync_standby' : 'replica',
    state: 'streaming',
    lag: 0,
  },
];

/** The case: WAL filled the primary's volume and PostgreSQL crash-loops on it. */
const FULL_PRIMARY: Record<string, BackendState> = {
  'backend-1': { postgres: 'down', freeMib: 16 },
  'backend-2': { postgres: 'replica', lsn: '0/5000060' },
  'backend-3': { postgres: 'replica', lsn: '0/5000000' },
};

describe('failover runbook (synthesized definition, run with aws-local-stepfunctions)', () => {
  test('Given a primary whose volume is full, when the runbook runs with {}, then it inspects every backend, releases the old primary’s reserve and fails over to the replica with the most WAL', async () => {
    const cluster = fakeFailover({ members: members(), backends: FULL_PRIMARY });

    const output = (await execute(FAILOVER, cluster, {})) as {
      newPrimary: { result: { leader: string } };
    };

    expect(cluster.sent.map(step)).toEqual([
      'Failover inspect backend-1',
      'Failover inspect backend-2',
      'Failover inspect backend-3',
      'Failover release-reserve backend-1',
    ]);
    // Asked of the old leader's Patroni (it may still answer), with no leader named.
    expect(cluster.posts).toEqual([
      { address: addressOf('backend-1'), body: { candidate: 'backend-2' } },
    ]);
    expect(output.newPrimary.result.leader).toBe('backend-2');
  });

  test('Given {"dryRun": true}, then it ends after the plan: only inspections, no reserve released, Patroni not asked', async () => {
    const cluster = fakeFailover({ members: members(), backends: FULL_PRIMARY });

    const output = (await execute(FAILOVER, cluster, { dryRun: true })) as {
      chosen: { result: { candidate: { name: string }; releaseReserveOn: { name: string }[] } };
    };

    expect(output.chosen.result.candidate.name).toBe('backend-2');
    expect(output.chosen.result.releaseReserveOn.map((n) => n.name)).toEqual(['backend-1']);
    expect(cluster.sent.map(step).every((s) => s.startsWith('Failover inspect'))).toBe(true);
    expect(cluster.posts).toEqual([]);
  });

  test('Given a primary that runs with room, then it refuses (FailoverRefusedError: switch over instead) and touches nothing', async () => {
    const cluster = fakeFailover({
      members: members(),
      backends: { ...FULL_PRIMARY, 'backend-1': { postgres: 'primary', lsn: '0/5000060' } },
    });

    const error = await failureOf(execute(FAILOVER, cluster, {}));

    expect(error.name).toBe('FailoverRefusedError');
    expect(error.message).toContain('backend-1 is a running primary with 50000 MiB free');
    expect(error.message).toContain('switch over');
    expect(cluster.posts).toEqual([]);
    expect(cluster.sent.map(step).some((s) => s.includes('release-reserve'))).toBe(false);
  });

  test('Given synchronous mode with backend-3 the recorded synchronous standby, when backend-2 is asked for, then it refuses naming the standby; with {} it fails over to backend-3', async () => {
    const backends = {
      ...FULL_PRIMARY,
      'backend-3': { postgres: 'replica', lsn: '0/5000060' },
    } as const;
    const refused = fakeFailover({ members: members('backend-3'), backends });

    const error = await failureOf(execute(FAILOVER, refused, { candidate: 'backend-2' }));

    expect(error.name).toBe('FailoverRefusedError');
    expect(error.message).toContain('backend-2: not the synchronous standby');
    expect(error.message).toContain('only the recorded synchronous standby (backend-3)');
    expect(refused.posts).toEqual([]);

    const chosen = fakeFailover({ members: members('backend-3'), backends });
    await execute(FAILOVER, chosen, {});
    expect(chosen.posts.map((p) => p.body)).toEqual([{ candidate: 'backend-3' }]);
  });

  test('Given the old primary down and no synchronous standby, when backend-3, which received less WAL than backend-2, is asked for, then it refuses naming both positions', async () => {
    const cluster = fakeFailover({ members: members(), backends: FULL_PRIMARY });

    const error = await failureOf(execute(FAILOVER, cluster, { candidate: 'backend-3' }));

    expect(error.name).toBe('FailoverRefusedError');
    expect(error.message).toContain('backend-3: has WAL to 0/5000000 only, behind 0/5000060');
    expect(cluster.posts).toEqual([]);
  });

  test.each([
    [
      { candidate: 'backend-9' },
      'candidate must be one of backend-1, backend-2, backend-3; got "backend-9"',
    ],
    [{ dryrun: true }, 'unknown field "dryrun"'],
    [{ releaseReserve: 'no' }, 'releaseReserve must be true or false; got "no"'],
  ])(
    'Given %j, then it fails with InvalidInputError (%s) before any node is inspected',
    async (input, message) => {
      const cluster = fakeFailover({ members: members(), backends: FULL_PRIMARY });

      const error = await failureOf(execute(FAILOVER, cluster, input));

      expect(error.name).toBe('InvalidInputError');
      expect(error.message).toContain(message);
      expect(cluster.sent).toEqual([]);
    },
  );

  test('Given Patroni refuses the failover (412), then the run fails with FailoverFailedError carrying Patroni’s text and what is left', async () => {
    const cluster = fakeFailover({
      members: members(),
      backends: FULL_PRIMARY,
      answer: { status: 412, body: 'failover is not possible: no good candidates have been found' },
    });

    const error = await failureOf(execute(FAILOVER, cluster, {}));

    expect(error.name).toBe('FailoverFailedError');
    expect(error.message).toContain('412: failover is not possible');
    expect(error.message).toContain('The cluster is left: Patroni may be failing over');
  });

  test('Given the definition, then the lock comes first and the hand-over is never repeated blindly on a Lambda service error', () => {
    expect(FAILOVER.StartAt).toMatch(/lock/i);
    const handOver = FAILOVER.States['Hand over'] as { Retry?: { ErrorEquals: string[] }[] };
    expect((handOver.Retry ?? []).flatMap((r) => r.ErrorEquals)).not.toContain(
      'Lambda.ServiceException',
    );
  });
});
