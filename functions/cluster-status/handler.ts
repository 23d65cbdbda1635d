import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { readTrust } from '../lib/ca-store';
import { logger } from '../lib/logger';
import { httpsPatroniGet } from '../lib/patroni';
import { InvalidRequestError } from '../lib/ssm-run';
import {
  confirmLeaderUnchanged,
  LeaderSnapshot,
  planRotation,
  RootRolloverInProgressError,
  RunbookInventory,
} from './status';

const secrets = new SecretsManagerClient({});

export type ClusterStatusEvent =
  | {
      readonly action: 'plan';
      readonly inventory: RunbookInventory;
      /** Set by the root rollover, the one runbook that signs while two roots are trusted. */
      readonly duringRootRollover?: boolean;
    }
  | {
      readonly action: 'confirm';
      readonly inventory: RunbookInventory;
      readonly before: LeaderSnapshot;
    };

/**
 * Step Functions task: Patroni's view of the cluster over its REST API,
 * verified against the cluster's roots. `plan` checks health and orders the
 * nodes; `confirm` fails with LeaderChangedError when a failover happened.
 */
export const handler = async (event: ClusterStatusEvent) => {
  const trustSecretId = process.env.TRUST_SECRET;
  if (!trustSecretId) throw new Error('environment variable TRUST_SECRET must be set');
  if (!event?.inventory?.backend?.length) {
    throw new InvalidRequestError('inventory.backend must list at least one backend node');
  }
  const trust = await readTrust(secrets, trustSecretId);
  if (!trust) throw new Error(`the cluster CA in ${trustSecretId} does not exist yet`);
  const get = httpsPatroniGet(trust.roots);
  switch (event.action) {
    case 'plan': {
      if (trust.roots.length > 1 && event.duringRootRollover !== true) {
        throw new RootRolloverInProgressError();
      }
      const plan = await planRotation(get, event.inventory);
      logger.info('cluster planned', { leader: plan.leader, timeline: plan.timeline });
      return plan;
    }
    case 'confirm': {
      const snapshot = await confirmLeaderUnchanged(get, event.inventory, event.before);
      logger.info('leader unchanged', { ...snapshot });
      return snapshot;
    }
    default:
      throw new InvalidRequestError(
        `action must be plan or confirm; given ${JSON.stringify((event as { action?: unknown }).action)}`,
      );
  }
};
