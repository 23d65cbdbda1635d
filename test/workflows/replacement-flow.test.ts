import {
  definitionOf,
  documentOf,
  execute,
  failureOf,
  fakeCluster,
  Sent,
} from '../helpers/fake-runbook';

const REPLACEMENT = definitionOf('ReplacementStateMachineArn');

const step = (s: Sent) => `${documentOf(s)} ${s.node}`;

describe('node replacement runbook (synthesized definition, run with aws-local-stepfunctions)', () => {
  test('Given a replica, when it is replaced, then EC2 swaps its root volume first and the bootstrap then rebuilds the cluster, the replica included', async () => {
    const cluster = fakeCluster({ leader: 'backend-1' });

    await execute(REPLACEMENT, cluster, { node: 'backend-2' });

    expect(cluster.rootsReplaced).toEqual(['backend-2']);
    const steps = cluster.sent.map(step);
    // No quorum check for a backend; the bootstrap's steps follow the swap.
    expect(steps.some((s) => s.startsWith('EtcdQuorum'))).toBe(false);
    expect(steps).toContain('Common backend-2');
    expect(steps).toContain('Patroni backend-2');
  });

  test('Given an etcd member, when it is replaced, then another member checks the others are healthy before EC2 is asked', async () => {
    const cluster = fakeCluster();

    await execute(REPLACEMENT, cluster, { node: 'etcd-3' });

    const quorum = cluster.sent.filter((s) => documentOf(s) === 'EtcdQuorum');
    expect(quorum.map((s) => [s.node, s.parameters.LeavingMember])).toEqual([['etcd-1', 'etcd-3']]);
    expect(cluster.sent[0]).toBe(quorum[0]);
    expect(cluster.rootsReplaced).toEqual(['etcd-3']);
  });

  test('Given an etcd member whose peers are not all healthy, then it stops with the quorum check’s error and EC2 is never asked', async () => {
    const cluster = fakeCluster({ failOn: { document: 'EtcdQuorum', node: 'etcd-1' } });

    const error = await failureOf(execute(REPLACEMENT, cluster, { node: 'etcd-2' }));

    expect(error.name).toBe('CommandFailedError');
    expect(cluster.rootsReplaced).toEqual([]);
    expect(cluster.sent.map(step)).toEqual(['EtcdQuorum etcd-1']);
  });

  test.each([
    [{ node: 'backend-1' }, 'ReplacementRefusedError', 'backend-1 is the primary'],
    [{ node: 'backend-9' }, 'InvalidInputError', 'node must be one of etcd-1, etcd-2, etcd-3'],
    [{}, 'InvalidInputError', 'got undefined'],
    [{ node: 'web-1', force: true }, 'InvalidInputError', 'unknown field "force"'],
  ])(
    'Given %j, then it fails with %s naming why, and nothing is sent or replaced',
    async (input, name, message) => {
      const cluster = fakeCluster({ leader: 'backend-1' });

      const error = await failureOf(execute(REPLACEMENT, cluster, input));

      expect(error.name).toBe(name);
      expect(error.message).toContain(message);
      expect(cluster.sent).toEqual([]);
      expect(cluster.rootsReplaced).toEqual([]);
    },
  );

  test('Given EC2 fails the root volume swap, then the run ends in Replacement failed and no node document is sent', async () => {
    const cluster = fakeCluster({ rootReplacement: 'failed' });

    const error = await failureOf(execute(REPLACEMENT, cluster, { node: 'backend-3' }));

    expect(error.name).toBe('RootReplacementFailedError');
    expect(cluster.sent).toEqual([]);
  });

  test('Given the definition, then the lock comes first and the root swap carries the execution name, from which the idempotency token for EC2 is made (a repeated call returns the same task)', () => {
    expect(REPLACEMENT.StartAt).toMatch(/lock/i);
    const swap = REPLACEMENT.States['Replace the root volume'] as {
      Parameters: { Payload: Record<string, string> };
    };
    expect(swap.Parameters.Payload['executionName.$']).toBe('$$.Execution.Name');
  });
});
