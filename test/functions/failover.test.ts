import { checkNewPrimary, handOver } from '../../functions/failover/handover';
import { type FailoverRequest, parseInspection, planFailover } from '../../functions/failover/plan';
import type { ClusterInventory, InventoryNode } from '../../functions/lib/inventory';
import type { PatroniAnswer, PatroniMember } from '../../functions/lib/patroni';
import { type BackendState, inspectOutput } from '../helpers/fake-failover';

const node = (name: string, address: string): InventoryNode => ({
  name,
  tier: 'backend',
  instanceId: `i-${name}`,
  address,
  agentId: '0',
  identities: name,
});
const INVENTORY: ClusterInventory = {
  etcd: [],
  backend: [
    node('backend-1', '10.9.0.1'),
    node('backend-2', '10.9.0.2'),
    node('backend-3', '10.9.0.3'),
  ],
  web: [],
};
const REQUEST: FailoverRequest = { releaseReserve: true, dryRun: false };
const replica = (name: string, extra: Partial<PatroniMember> = {}): PatroniMember => ({
  name,
  role: 'replica',
  state: 'streaming',
  lag: 0,
  ...extra,
});
const MEMBERS = [
  { name: 'backend-1', role: 'leader', state: 'running' },
  replica('backend-2'),
  replica('backend-3'),
];

const plan = (
  backends: Record<string, BackendState>,
  members: PatroniMember[] = MEMBERS,
  request: FailoverRequest = REQUEST,
) =>
  planFailover(
    request,
    INVENTORY,
    { members },
    Object.entries(backends).map(([name, state]) => parseInspection(name, inspectOutput(state))),
  );

describe('failover plan', () => {
  test('Given the inspect lines of a full volume, then the inspection reads them, and a position in lower case is compared as the same WAL', () => {
    const inspection = parseInspection(
      'backend-1',
      inspectOutput({ postgres: 'replica', lsn: '0/5a0000d8', freeMib: 16, reserveMib: 0 }),
    );
    expect(inspection).toMatchObject({
      mounted: true,
      volumeFreeMib: 16,
      reserveMib: 0,
      lsn: '0/5A0000D8',
    });
    expect(() => parseInspection('backend-1', 'nothing here')).toThrow(
      'backend-1: the failover inspection reported postgres=(nothing)',
    );
  });

  test('Given no leader at all (its key expired), then the replica with the most WAL is chosen and no reserve is released', () => {
    const chosen = plan(
      {
        'backend-1': { postgres: 'down' },
        'backend-2': { postgres: 'replica', lsn: '0/7000000' },
        'backend-3': { postgres: 'replica', lsn: '0/7000100' },
      },
      [replica('backend-1', { state: 'stopped' }), replica('backend-2'), replica('backend-3')],
    );
    expect(chosen).toMatchObject({ from: null, knownLsn: '0/7000100', releaseReserveOn: [] });
    expect(chosen.candidate.name).toBe('backend-3');
  });

  test('Given the old primary’s volume is not mounted, then it counts as unable to run: the failover goes ahead, with no reserve to release', () => {
    const chosen = plan({
      'backend-1': { postgres: 'down', mounted: false },
      'backend-2': { postgres: 'replica', lsn: '0/7000000' },
      'backend-3': { postgres: 'replica', lsn: '0/7000000' },
    });
    expect(chosen.candidate.name).toBe('backend-2');
    expect(chosen.releaseReserveOn).toEqual([]);
    expect(chosen.why).toBe('backend-1 has no data volume mounted');
  });

  test('Given {"releaseReserve": false}, or a reserve already gone, then the plan releases nothing', () => {
    const full = {
      'backend-1': { postgres: 'down', freeMib: 10 },
      'backend-2': { postgres: 'replica', lsn: '0/7000000' },
      'backend-3': { postgres: 'replica', lsn: '0/7000000' },
    } as const;
    expect(plan(full, MEMBERS, { ...REQUEST, releaseReserve: false }).releaseReserveOn).toEqual([]);
    expect(
      plan({ ...full, 'backend-1': { postgres: 'down', freeMib: 10, reserveMib: 0 } })
        .releaseReserveOn,
    ).toEqual([]);
    expect(plan(full).releaseReserveOn.map((n) => n.name)).toEqual(['backend-1']);
  });

  test('Given a run that released the reserve and stopped, when the runbook runs again, then the space the reserve gave back does not make the volume count as free', () => {
    const released = {
      'backend-1': { postgres: 'primary', lsn: '0/7000200', freeMib: 2064, reserveMib: 0 },
      'backend-2': { postgres: 'replica', lsn: '0/7000100' },
      'backend-3': { postgres: 'replica', lsn: '0/7000000' },
    } as const;
    expect(plan(released)).toMatchObject({ from: 'backend-1', releaseReserveOn: [] });
    // With the reserve in place, 5000 MiB free is room: nothing to fail over.
    expect(() =>
      plan({ ...released, 'backend-1': { postgres: 'primary', freeMib: 5000 } }),
    ).toThrow('backend-1 is a running primary with 5000 MiB free');
  });

  test('Given a full primary that still runs, then positions read a moment apart are not compared: it hands over cleanly to the streaming replica with the most WAL', () => {
    const chosen = plan({
      'backend-1': { postgres: 'primary', lsn: '0/7000200', freeMib: 10 },
      'backend-2': { postgres: 'replica', lsn: '0/7000100' },
      'backend-3': { postgres: 'replica', lsn: '0/7000000' },
    });
    expect(chosen).toMatchObject({ from: 'backend-1', knownLsn: null });
    expect(chosen.candidate.name).toBe('backend-2');
  });

  test('Given the old primary asked for as the candidate, or a replica behind another, then the refusal says so and calls the others ready', () => {
    const down = {
      'backend-1': { postgres: 'down', freeMib: 10 },
      'backend-2': { postgres: 'replica', lsn: '0/7000000' },
      'backend-3': { postgres: 'replica', lsn: '0/6000000' },
    } as const;
    expect(() => plan(down, MEMBERS, { ...REQUEST, candidate: 'backend-1' })).toThrow(
      'backend-1 is the primary this runbook would move off',
    );
    expect(() => plan(down, MEMBERS, { ...REQUEST, candidate: 'backend-3' })).toThrow(
      'backend-3 cannot take over safely: backend-2: ready; backend-3: has WAL to 0/6000000 only, behind 0/7000000.',
    );
  });

  test('Given the only caught-up replica is tagged nofailover and the other lags, then it refuses naming both', () => {
    expect(() =>
      plan(
        {
          'backend-1': { postgres: 'down', freeMib: 10 },
          'backend-2': { postgres: 'replica', lsn: '0/7000000' },
          'backend-3': { postgres: 'replica', lsn: '0/6000000' },
        },
        [MEMBERS[0], replica('backend-2', { tags: { nofailover: true } }), replica('backend-3')],
      ),
    ).toThrow(
      /backend-2: tagged nofailover; backend-3: has WAL to 0\/6000000 only, behind 0\/7000000/,
    );
  });
});

describe('failover hand-over and check', () => {
  const chosen = () =>
    plan({
      'backend-1': { postgres: 'down', freeMib: 10 },
      'backend-2': { postgres: 'replica', lsn: '0/7000000' },
      'backend-3': { postgres: 'replica', lsn: '0/6000000' },
    });
  const clients = (answers: (PatroniAnswer | Error)[], leader = 'backend-1') => {
    const asked: string[] = [];
    return {
      asked,
      patroniGet: async () => ({
        members: [
          {
            name: 'backend-1',
            role: leader === 'backend-1' ? 'leader' : 'replica',
            state: 'stopped',
          },
          {
            name: 'backend-2',
            role: leader === 'backend-2' ? 'leader' : 'replica',
            state: 'running',
          },
        ],
      }),
      patroniSend: async (address: string) => {
        asked.push(address);
        const answer = answers.shift()!;
        if (answer instanceof Error) throw answer;
        return answer;
      },
    };
  };

  test('Given the old primary’s Patroni does not answer, then the request goes to the candidate’s Patroni', async () => {
    const fake = clients([
      new Error('connect ECONNREFUSED'),
      { status: 200, body: 'Successfully failed over to "backend-2"' },
    ]);
    await expect(handOver(fake, chosen(), INVENTORY)).resolves.toMatchObject({ via: 'backend-2' });
    expect(fake.asked).toEqual(['10.9.0.1', '10.9.0.2']);
  });

  test.each([
    [
      'goes on to the check (Patroni stopped waiting)',
      { status: 503, body: 'Failover status unknown' },
      undefined,
    ],
    [
      'fails: another member won',
      { status: 200, body: 'Failed over to "backend-3" instead of "backend-2"' },
      'instead of',
    ],
    [
      'fails with Patroni’s text',
      { status: 503, body: 'Failover failed' },
      'with 503: Failover failed',
    ],
  ])('Given Patroni’s answer, the hand-over %s (%j)', async (_, answer, failure) => {
    const result = handOver(clients([answer]), chosen(), INVENTORY);
    if (failure)
      await expect(result).rejects.toMatchObject({
        name: 'FailoverFailedError',
        message: expect.stringContaining(failure),
      });
    else await expect(result).resolves.toMatchObject({ via: 'backend-1' });
  });

  test('Given the candidate does not lead yet, then the check raises FailoverPendingError listing the members; once it leads, it reports it', async () => {
    await expect(checkNewPrimary(clients([]), chosen(), INVENTORY)).rejects.toMatchObject({
      name: 'FailoverPendingError',
      message:
        'backend-2 is not the running leader yet: backend-1 leader/stopped, backend-2 replica/running',
    });
    await expect(
      checkNewPrimary(clients([], 'backend-2'), chosen(), INVENTORY),
    ).resolves.toMatchObject({
      leader: 'backend-2',
    });
  });
});
