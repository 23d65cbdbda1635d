import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { readTrust } from '../lib/ca-store';
import { setting, wholeNumberSetting } from '../lib/env';
import { logger, withLambdaContext } from '../lib/logger';
import { httpsPatroniGet } from '../lib/patroni';
import { healthGate } from '../lib/replication';
import { InvalidRequestError } from '../lib/ssm-run';
import {
  checkSnapshot,
  chooseBackupSource,
  confirmLeaderUnchanged,
  LeaderSnapshot,
  locateLeader,
  planRotation,
  RootRolloverInProgressError,
} from './status';
import type { ClusterInventory, NodeAddress } from '../lib/inventory';

const secrets = new SecretsManagerClient({});

export type ClusterStatusEvent =
  | {
      readonly action: 'plan';
      readonly inventory: ClusterInventory<NodeAddress>;
      /** Set by the root rollover, the one runbook that signs while two roots are trusted. */
      readonly duringRootRollover?: boolean;
    }
  | {
      /**
       * `locate`: the current leader's inventory entry, whatever the replicas' state;
       * `healthy`: the health gate's checks, with no earlier leader to compare against;
       * `backupSource`: the member a backup is taken on (a caught-up replica, else the leader).
       */
      readonly action: 'locate' | 'healthy' | 'backupSource';
      readonly inventory: ClusterInventory<NodeAddress>;
    }
  | {
      readonly action: 'confirm' | 'gate';
      readonly inventory: ClusterInventory<NodeAddress>;
      readonly before: LeaderSnapshot;
    };

/** MAX_LAG_BYTES: how far (received and replayed) a replica may be behind the leader. */
export function maxLagBytesSetting(env: NodeJS.ProcessEnv = process.env): number {
  return wholeNumberSetting('MAX_LAG_BYTES', { min: 0, unit: 'bytes' }, env);
}

/**
 * Step Functions task: Patroni's view of the cluster over its REST API,
 * verified against the cluster's roots. `plan` checks health and orders the
 * nodes; `gate` checks health between two nodes; `confirm` and `gate` fail
 * with LeaderChangedError when a failover happened.
 */
export const handler = withLambdaContext(async (event: ClusterStatusEvent) => {
  const trustSecretId = setting('TRUST_SECRET');
  const maxLagBytes = maxLagBytesSetting();
  if (!event?.inventory?.backend?.length) {
    throw new InvalidRequestError('inventory.backend must list at least one backend node');
  }
  // Checked before anything is read.
  const before = event.action === 'gate' ? checkSnapshot(event.before) : undefined;
  const trust = await readTrust(secrets, trustSecretId);
  if (!trust) throw new Error(`the cluster CA in ${trustSecretId} does not exist yet`);
  const get = httpsPatroniGet(trust.roots);
  switch (event.action) {
    case 'plan': {
      if (trust.roots.length > 1 && event.duringRootRollover !== true) {
        throw new RootRolloverInProgressError();
      }
      const plan = await planRotation(get, event.inventory, { maxLagBytes });
      logger.info('cluster planned', { leader: plan.leader, timeline: plan.timeline });
      return plan;
    }
    case 'gate': {
      const snapshot = await healthGate(get, event.inventory, { maxLagBytes, before });
      logger.info('cluster healthy between nodes', { ...snapshot });
      return snapshot;
    }
    case 'healthy': {
      const snapshot = await healthGate(get, event.inventory, { maxLagBytes });
      logger.info('cluster healthy', { ...snapshot });
      return snapshot;
    }
    case 'locate': {
      const location = await locateLeader(get, event.inventory);
      logger.info('leader located', { leader: location.leader.name, timeline: location.timeline });
      return location;
    }
    case 'backupSource': {
      const source = await chooseBackupSource(get, event.inventory, { maxLagBytes });
      logger.info('backup source chosen', {
        node: source.node.name,
        from: source.from,
        reason: source.reason,
      });
      return source;
    }
    case 'confirm': {
      const snapshot = await confirmLeaderUnchanged(get, event.inventory, event.before);
      logger.info('leader unchanged', { ...snapshot });
      return snapshot;
    }
    default:
      throw new InvalidRequestError(
        `action must be plan, locate, healthy, backupSource, gate or confirm; given ${JSON.stringify((event as { action?: unknown }).action)}`,
      );
  }
});
