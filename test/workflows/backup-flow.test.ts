import { definitionOf, documentOf, execute, failureOf, fakeCluster } from '../helpers/fake-runbook';

const BACKUP = definitionOf('BackupStateMachineArn');
const HEALTH = definitionOf('BackupHealthStateMachineArn');

describe('backup runbook (synthesized definition, run with aws-local-stepfunctions)', () => {
  test.each([['full'], ['diff']])(
    'Given backend-2 leads and backend-1 is its synchronous standby, when a %s backup is asked for, then it is taken on the asynchronous replica backend-3 alone, and the output says why',
    async (type) => {
      const cluster = fakeCluster({ leader: 'backend-2', syncStandby: 'backend-1' });

      const output = (await execute(BACKUP, cluster, { type })) as Record<string, unknown>;

      expect(cluster.sent.map((s) => [documentOf(s), s.node, s.parameters])).toEqual([
        ['Backup', 'backend-3', { Action: type, MemberAddress: expect.stringMatching(/^\S+$/) }],
      ]);
      expect(output).toMatchObject({ from: 'replica', node: [{ name: 'backend-3' }] });
      expect(output.reason).toContain('backend-3 receives 0 and replays 0 bytes behind');
    },
  );

  test('Given the asynchronous replica down, then the synchronous standby is the source', async () => {
    const cluster = fakeCluster({
      leader: 'backend-1',
      syncStandby: 'backend-2',
      stopped: ['backend-3'],
    });
    await execute(BACKUP, cluster, { type: 'full' });
    expect(cluster.sent.map((s) => s.node)).toEqual(['backend-2']);
  });

  test('Given one replica replaying far behind and the other stopped, then the backup is taken on the primary, and the output names both reasons', async () => {
    const cluster = fakeCluster({
      leader: 'backend-1',
      stopped: ['backend-3'],
      replayBehind: { 'backend-2': 64 * 1048576 },
    });
    const output = (await execute(BACKUP, cluster, { type: 'full' })) as Record<string, unknown>;
    expect(cluster.sent.map((s) => s.node)).toEqual(['backend-1']);
    expect(output.from).toBe('primary');
    expect(output.reason).toMatch(
      /no replica qualifies: .*backend-2 replays 67108864 bytes behind/,
    );
    expect(output.reason).toContain('backend-3 is not a running member');
  });

  test.each([
    [{ type: 'incr' }, 'type must be full or diff; got "incr"'],
    [{ type: 7 }, 'type must be full or diff; got 7'],
    [
      { typ: 'full' },
      'unknown field "typ": the backup runbook takes only type, as in {"type": "full"}',
    ],
    [
      {},
      'type is required: the backup runbook\'s input must name it, as in {"type": "full"}; got {}',
    ],
  ])(
    'Given the input %p, then it fails with InvalidInputError saying what is allowed, touching no node',
    async (input, message) => {
      const cluster = fakeCluster();
      const error = await failureOf(execute(BACKUP, cluster, input));
      expect(error.name).toBe('InvalidInputError');
      expect(error.message).toContain(message);
      expect(cluster.sent).toEqual([]);
    },
  );

  test('Given the backup fails on the node, then the run ends in Backup failed with the named error and the node', async () => {
    const cluster = fakeCluster({
      leader: 'backend-3',
      syncStandby: 'backend-2',
      failOn: { document: 'Backup', action: 'full', node: 'backend-1' },
    });
    const error = await failureOf(execute(BACKUP, cluster, { type: 'full' }));
    expect(error.name).toBe('CommandFailedError');
    expect(error.message).toContain('backend-1');
  });
});

describe('backup health runbook (synthesized definition, run with aws-local-stepfunctions)', () => {
  test('Given a cluster led by backend-3, then the status action runs there alone and its reading is the output', async () => {
    const cluster = fakeCluster({ leader: 'backend-3' });

    const output = (await execute(HEALTH, cluster)) as { health: { node: string } };

    expect(cluster.sent.map((s) => [documentOf(s), s.node, s.parameters.Action])).toEqual([
      ['Backup', 'backend-3', 'status'],
    ]);
    expect(output.health).toEqual(expect.objectContaining({ node: 'backend-3' }));
  });

  test('Given the status command fails, then the run fails naming the node, and nothing is recorded', async () => {
    const cluster = fakeCluster({
      leader: 'backend-1',
      failOn: { document: 'Backup', action: 'status', node: 'backend-1' },
    });
    const error = await failureOf(execute(HEALTH, cluster));
    expect(error.name).toBe('CommandFailedError');
    expect(error.message).toContain('backend-1');
  });
});
