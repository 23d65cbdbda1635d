import {
  CreateReplaceRootVolumeTaskCommand,
  DescribeReplaceRootVolumeTasksCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import type { ClusterInventory, InventoryNode, Tier } from '../../functions/lib/inventory';
import {
  lookAtRootReplacement,
  planReplacement,
  replaceRootVolume,
  ROOT_REPLACEMENT_BOUND_SECONDS,
} from '../../functions/replace-node/replacement';

const node = (name: string, tier: Tier, n: number): InventoryNode => ({
  name,
  tier,
  instanceId: `i-${name}`,
  address: `10.40.${n}.10`,
  agentId: '0',
  identities: '',
});
const INVENTORY: ClusterInventory = {
  etcd: [node('etcd-1', 'etcd', 1), node('etcd-2', 'etcd', 2), node('etcd-3', 'etcd', 3)],
  backend: [node('backend-1', 'backend', 4), node('backend-2', 'backend', 5)],
  web: [node('web-1', 'web', 6)],
};

const ec2 = mockClient(EC2Client);
beforeEach(() => ec2.reset());

describe('planReplacement', () => {
  test('Given a replica, then it is planned with no quorum check', () => {
    const plan = planReplacement({ node: 'backend-2' }, INVENTORY, 'backend-1');
    expect(plan.node.name).toBe('backend-2');
    expect(plan.quorumCheckOn).toEqual([]);
  });

  test('Given an etcd member, then the quorum check runs on another member', () => {
    const plan = planReplacement({ node: 'etcd-1' }, INVENTORY, 'backend-1');
    expect(plan.quorumCheckOn.map((n) => n.name)).toEqual(['etcd-2']);
  });

  test("Given Patroni's leader, then it is refused, saying to switch over first", () => {
    expect(() => planReplacement({ node: 'backend-1' }, INVENTORY, 'backend-1')).toThrow(
      expect.objectContaining({
        name: 'ReplacementRefusedError',
        message: expect.stringContaining('backend-1 is the primary') as string,
      }),
    );
  });

  test('Given a single etcd member, then replacing it is refused', () => {
    const single = { ...INVENTORY, etcd: [INVENTORY.etcd[0]] };
    expect(() => planReplacement({ node: 'etcd-1' }, single, 'backend-1')).toThrow(
      /the only etcd member/,
    );
  });

  test.each([
    ['backend-1', /the input must be an object/],
    [null, /the input must be an object/],
    [{ node: 'db-1' }, /node must be one of etcd-1, .*web-1; got "db-1"/],
    [{ node: 2 }, /got 2/],
    [{ node: 'web-1', nodes: [] }, /unknown field "nodes"/],
  ])('Given %j, then InvalidInputError names the field and what is allowed', (input, message) => {
    expect(() => planReplacement(input, INVENTORY, 'backend-1')).toThrow(
      expect.objectContaining({
        name: 'InvalidInputError',
        message: expect.stringMatching(message) as string,
      }),
    );
  });
});

describe('replaceRootVolume', () => {
  test('Given a node, then EC2 is asked once for its launch-state root, deleting the old one, with a token from the execution that fits EC2 and repeats', async () => {
    ec2
      .on(CreateReplaceRootVolumeTaskCommand)
      .resolves({ ReplaceRootVolumeTask: { ReplaceRootVolumeTaskId: 'replacevol-1' } });
    const name = 'x'.repeat(80);

    await expect(replaceRootVolume(new EC2Client({}), INVENTORY.backend[1], name)).resolves.toEqual(
      {
        taskId: 'replacevol-1',
      },
    );
    await replaceRootVolume(new EC2Client({}), INVENTORY.backend[1], name);

    const calls = ec2.commandCalls(CreateReplaceRootVolumeTaskCommand).map((c) => c.args[0].input);
    expect(calls[0]).toMatchObject({ InstanceId: 'i-backend-2', DeleteReplacedRootVolume: true });
    expect(calls[0].ImageId).toBeUndefined();
    expect(calls[0].SnapshotId).toBeUndefined();
    expect(calls[0].ClientToken).toHaveLength(64);
    expect(calls[1].ClientToken).toBe(calls[0].ClientToken);
  });

  test('Given EC2 refuses (a stopped instance), then RootReplacementFailedError names the node and EC2’s reason', async () => {
    ec2.on(CreateReplaceRootVolumeTaskCommand).rejects(
      Object.assign(new Error("The instance 'i-backend-2' is not in the 'running' state"), {
        name: 'IncorrectState',
      }),
    );
    await expect(
      replaceRootVolume(new EC2Client({}), INVENTORY.backend[1], 'run-1'),
    ).rejects.toThrow(
      expect.objectContaining({
        name: 'RootReplacementFailedError',
        message: expect.stringMatching(
          /backend-2.*IncorrectState.*not in the 'running' state/,
        ) as string,
      }),
    );
  });
});

describe('lookAtRootReplacement', () => {
  const look = (state: string | undefined, deadline: number, now: number) => {
    ec2
      .on(DescribeReplaceRootVolumeTasksCommand)
      .resolves({ ReplaceRootVolumeTasks: state ? [{ TaskState: state as never }] : [] });
    return lookAtRootReplacement(
      new EC2Client({}),
      INVENTORY.etcd[2],
      'replacevol-1',
      deadline,
      now,
    );
  };

  test('Given a first look at a task in progress, then not ready, with a deadline set from now', async () => {
    await expect(look('in-progress', 0, 1000)).resolves.toEqual({
      ready: false,
      deadline: 1000 + ROOT_REPLACEMENT_BOUND_SECONDS * 1000,
      detail: "etcd-3's root volume replacement replacevol-1 is in-progress",
    });
  });

  test('Given a succeeded task, then ready', async () => {
    await expect(look('succeeded', 5000, 2000)).resolves.toMatchObject({ ready: true });
  });

  test.each([['failed'], ['failed-detached'], [undefined]])(
    'Given a task %s, then RootReplacementFailedError',
    async (state) => {
      await expect(look(state, 5000, 2000)).rejects.toThrow(
        expect.objectContaining({ name: 'RootReplacementFailedError' }),
      );
    },
  );

  test('Given a task still pending past the deadline, then RootReplacementFailedError says how long it waited', async () => {
    await expect(look('pending', 5000, 6000)).rejects.toThrow(
      new RegExp(`pending after ${ROOT_REPLACEMENT_BOUND_SECONDS} s`),
    );
  });
});
