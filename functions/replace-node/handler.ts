import { EC2Client } from '@aws-sdk/client-ec2';
import type { ClusterInventory, InventoryNode } from '../lib/inventory';
import { logger, withLambdaContext } from '../lib/logger';
import { InvalidRequestError } from '../lib/ssm-run';
import {
  type Look,
  lookAtRootReplacement,
  planReplacement,
  replaceRootVolume,
  type ReplacementPlan,
} from './replacement';

const ec2 = new EC2Client({});

export type ReplacementEvent =
  | {
      /** Checks the execution input against the cluster, Patroni's leader named. */
      readonly action: 'plan';
      readonly input: unknown;
      readonly inventory: ClusterInventory;
      readonly leader: string;
    }
  | {
      /** Starts EC2's root volume replacement, once per execution (named by it). */
      readonly action: 'replace-root';
      readonly node: InventoryNode;
      readonly executionName: string;
    }
  | {
      /** One look at the replacement task (deadline 0 on the first). */
      readonly action: 'look';
      readonly node: InventoryNode;
      readonly taskId: string;
      readonly deadline: number;
    };

/** Step Functions task of the node replacement runbook. */
export const handler = withLambdaContext(
  async (event: ReplacementEvent): Promise<ReplacementPlan | { taskId: string } | Look> => {
    switch (event?.action) {
      case 'plan': {
        const plan = planReplacement(event.input, event.inventory, event.leader);
        logger.info('replacement planned', {
          node: plan.node.name,
          quorumCheckOn: plan.quorumCheckOn.map((n) => n.name),
        });
        return plan;
      }
      case 'replace-root': {
        const task = await replaceRootVolume(ec2, event.node, event.executionName);
        logger.info('root volume replacement started', { node: event.node.name, ...task });
        return task;
      }
      case 'look': {
        const look = await lookAtRootReplacement(ec2, event.node, event.taskId, event.deadline);
        logger.info('root volume replacement', { detail: look.detail });
        return look;
      }
      default:
        throw new InvalidRequestError(
          `action must be plan, replace-root or look; given ${JSON.stringify((event as { action?: unknown })?.action)}`,
        );
    }
  },
);
