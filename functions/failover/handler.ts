import type { ClusterInventory } from '../lib/inventory';
import { logger, withLambdaContext } from '../lib/logger';
import { readPatroniCluster, type PatroniCluster } from '../lib/patroni';
import { patroniClients } from '../lib/patroni-clients';
import { InvalidRequestError } from '../lib/ssm-run';
import { checkNewPrimary, handOver } from './handover';
import {
  type FailoverPlan,
  type FailoverRequest,
  parseFailoverRequest,
  parseInspection,
  planFailover,
} from './plan';

export type FailoverEvent =
  | {
      /** Checks the execution input, then reads Patroni's members. */
      readonly action: 'read';
      readonly input: unknown;
      readonly inventory: ClusterInventory;
    }
  | {
      /** Chooses the candidate from the members and every backend's inspection. */
      readonly action: 'plan';
      readonly request: FailoverRequest;
      readonly cluster: PatroniCluster;
      readonly inspections: readonly { readonly node: string; readonly stdout: string }[];
      readonly inventory: ClusterInventory;
    }
  | {
      /** `hand-over`: POST /failover, once; `check`: the candidate leads (else FailoverPendingError). */
      readonly action: 'hand-over' | 'check';
      readonly plan: FailoverPlan;
      readonly inventory: ClusterInventory;
    };

/** Step Functions task of the failover runbook. */
export const handler = withLambdaContext(async (event: FailoverEvent): Promise<unknown> => {
  switch (event?.action) {
    case 'read': {
      const request = parseFailoverRequest(event.input, event.inventory);
      const { patroniGet } = await patroniClients();
      const cluster = await readPatroniCluster(
        patroniGet,
        event.inventory.backend.map((node) => node.address),
      );
      // Only what the plan reads: the state stays small.
      const members = cluster.members.map(({ name, role, state, lag, tags, timeline }) => ({
        name,
        role,
        state,
        lag,
        timeline,
        tags: { nofailover: tags?.nofailover === true },
      }));
      return { request, cluster: { members } };
    }
    case 'plan': {
      const inspections = event.inspections.map((i) => parseInspection(i.node, i.stdout));
      logger.info('backends inspected', { inspections });
      const plan = planFailover(event.request, event.inventory, event.cluster, inspections);
      logger.info('failover planned', { ...plan, candidate: plan.candidate.name });
      return plan;
    }
    case 'hand-over': {
      const result = await handOver(await patroniClients(), event.plan, event.inventory);
      logger.info('failover requested', { ...result, candidate: event.plan.candidate.name });
      return result;
    }
    case 'check':
      return checkNewPrimary(await patroniClients(), event.plan, event.inventory);
    default:
      throw new InvalidRequestError(
        `action must be read, plan, hand-over or check; given ${JSON.stringify((event as { action?: unknown })?.action)}`,
      );
  }
});
