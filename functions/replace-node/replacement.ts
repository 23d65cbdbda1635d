import { createHash } from 'node:crypto';
import type {
  CreateReplaceRootVolumeTaskCommandOutput,
  DescribeReplaceRootVolumeTasksCommandOutput,
} from '@aws-sdk/client-ec2';
import {
  CreateReplaceRootVolumeTaskCommand,
  DescribeReplaceRootVolumeTasksCommand,
} from '@aws-sdk/client-ec2';
import { ErrorName, messageError, InvalidInputError } from '../lib/errors';
import type { ClusterInventory, InventoryNode } from '../lib/inventory';

export { InvalidInputError };
/** Replacing this node now would hurt the cluster; nothing was touched. */
export class ReplacementRefusedError extends messageError(ErrorName.ReplacementRefused) {}
/** EC2 could not give the instance a fresh root volume. */
export class RootReplacementFailedError extends messageError(ErrorName.RootReplacementFailed) {}

const EXAMPLE = '{"node": "backend-2"}';
const given = (value: unknown) => JSON.stringify(value) ?? String(value);

/** What the runbook carries from the check on: the node and where its quorum check runs. */
export interface ReplacementPlan {
  readonly node: InventoryNode;
  /**
   * The etcd member that checks, before anything is touched, that every other
   * member answers healthy (a one-item list for the Map; empty for other tiers).
   */
  readonly quorumCheckOn: readonly InventoryNode[];
}

/**
 * Checks the request against the cluster: the node must exist, must not be
 * Patroni's leader (a switchover moves it first), and an etcd member is
 * checked on another member for quorum. Every refusal names its reason.
 */
export function planReplacement(
  input: unknown,
  inventory: ClusterInventory,
  leader: string,
): ReplacementPlan {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidInputError(
      `the input must be an object such as ${EXAMPLE}; got ${given(input)}`,
    );
  }
  const fields = input as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((key) => key !== 'node');
  if (unknown.length) {
    throw new InvalidInputError(
      `unknown field ${unknown.map((key) => `"${key}"`).join(', ')}; the only field is node, as in ${EXAMPLE}`,
    );
  }
  const nodes = [...inventory.etcd, ...inventory.backend, ...inventory.web];
  const node = nodes.find((candidate) => candidate.name === fields.node);
  if (!node) {
    throw new InvalidInputError(
      `node must be one of ${nodes.map((n) => n.name).join(', ')}; got ${given(fields.node)}`,
    );
  }
  if (node.name === leader) {
    throw new ReplacementRefusedError(
      `${node.name} is the primary: replacing it would stop writes until Patroni fails over; switch over first (the upgrade runbook's drain, or patronictl switchover), then replace it; nothing was touched`,
    );
  }
  if (node.tier !== 'etcd') return { node, quorumCheckOn: [] };
  const other = inventory.etcd.find((member) => member.name !== node.name);
  if (!other) {
    throw new ReplacementRefusedError(
      `${node.name} is the only etcd member: replacing it loses the cluster's state; nothing was touched`,
    );
  }
  return { node, quorumCheckOn: [other] };
}

/** The EC2 calls the replacement makes. */
export interface Ec2Api {
  send(
    command: CreateReplaceRootVolumeTaskCommand,
  ): Promise<CreateReplaceRootVolumeTaskCommandOutput>;
  send(
    command: DescribeReplaceRootVolumeTasksCommand,
  ): Promise<DescribeReplaceRootVolumeTasksCommandOutput>;
}

/**
 * Asks EC2 to give the node's instance a fresh root volume from its launch
 * state: the same instance, address and data volume, so the stack still
 * describes it. The client token comes from the execution's name (EC2 takes
 * 64 characters, an execution name may have 80), so a repeated call returns
 * the same task instead of starting a second one.
 */
export async function replaceRootVolume(
  ec2: Ec2Api,
  node: InventoryNode,
  executionName: string,
): Promise<{ readonly taskId: string }> {
  const clientToken = createHash('sha256').update(`${executionName}/${node.name}`).digest('hex');
  const answer = await ec2
    .send(
      new CreateReplaceRootVolumeTaskCommand({
        InstanceId: node.instanceId,
        DeleteReplacedRootVolume: true,
        ClientToken: clientToken,
      }),
    )
    .catch((error: unknown) => {
      const { name, message } =
        error instanceof Error ? error : { name: 'Error', message: String(error) };
      throw new RootReplacementFailedError(
        `EC2 refused to replace ${node.name}'s root volume (${node.instanceId}): ${name}: ${message}; an instance must be running for it (start a stopped one first)`,
        { cause: error },
      );
    });
  const taskId = answer.ReplaceRootVolumeTask?.ReplaceRootVolumeTaskId;
  if (!taskId) {
    throw new RootReplacementFailedError(`EC2 started no root volume replacement for ${node.name}`);
  }
  return { taskId };
}

/** How long EC2 may take to replace a root volume (the instance restarts). */
export const ROOT_REPLACEMENT_BOUND_SECONDS = 1200;

/** One look in a Wait/Choice loop: the deadline set on the first look travels with the state. */
export interface Look {
  readonly ready: boolean;
  readonly deadline: number;
  readonly detail: string;
}

/** Whether the root volume replacement has succeeded; failed or past the deadline, a named error. */
export async function lookAtRootReplacement(
  ec2: Ec2Api,
  node: InventoryNode,
  taskId: string,
  deadline: number,
  now = Date.now(),
): Promise<Look> {
  const until = deadline || now + ROOT_REPLACEMENT_BOUND_SECONDS * 1000;
  const answer = await ec2.send(
    new DescribeReplaceRootVolumeTasksCommand({ ReplaceRootVolumeTaskIds: [taskId] }),
  );
  const state = answer.ReplaceRootVolumeTasks?.[0]?.TaskState ?? 'unknown';
  const detail = `${node.name}'s root volume replacement ${taskId} is ${state}`;
  if (state === 'succeeded') return { ready: true, deadline: until, detail };
  if (state === 'failed' || state === 'failed-detached' || state === 'unknown') {
    throw new RootReplacementFailedError(
      `${detail}; the instance keeps its old root volume when EC2 could not swap it (see DescribeReplaceRootVolumeTasks)`,
    );
  }
  if (now > until) {
    throw new RootReplacementFailedError(
      `${detail} after ${ROOT_REPLACEMENT_BOUND_SECONDS} s; nothing after it ran`,
    );
  }
  return { ready: false, deadline: until, detail };
}
