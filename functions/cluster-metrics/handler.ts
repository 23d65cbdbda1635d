import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { readTrust } from '../lib/ca-store';
import { setting } from '../lib/env';
import { logger, withLambdaContext } from '../lib/logger';
import { CLUSTER_METRICS } from '../lib/metric-names';
import { httpsPatroniGet } from '../lib/patroni';
import type { BackendAddress } from '../lib/replication';
import { InvalidRequestError } from '../lib/ssm-run';
import { ClusterReading, publishCluster, readCluster } from './metrics';

const secrets = new SecretsManagerClient({});
const metrics = new Metrics({
  namespace: CLUSTER_METRICS.namespace,
  serviceName: CLUSTER_METRICS.service,
});

/** BACKENDS: the backends as `[{"name", "address"}]`, from the stack's inventory. */
export function backendsSetting(env: NodeJS.ProcessEnv = process.env): BackendAddress[] {
  const raw = setting('BACKENDS', env);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  const valid =
    Array.isArray(parsed) &&
    parsed.length > 0 &&
    parsed.every(
      (entry) =>
        typeof entry?.name === 'string' &&
        typeof entry?.address === 'string' &&
        Object.keys(entry).length === 2,
    );
  if (!valid) {
    throw new InvalidRequestError(
      `environment variable BACKENDS must be a JSON list of {"name", "address"}; got ${JSON.stringify(raw)}`,
    );
  }
  return parsed as BackendAddress[];
}

/**
 * Every minute (EventBridge): Patroni's view of the cluster as metrics.
 * It never fails on what it reads: an unreachable member is a figure (not
 * running), and only a broken setting or an unreadable trust store fails the
 * run, which the publisher's heartbeat alarm then reports.
 */
export const handler = withLambdaContext(async (): Promise<ClusterReading> => {
  const clusterName = setting('CLUSTER_NAME');
  const backends = backendsSetting();
  const trustSecretId = setting('TRUST_SECRET');
  const trust = await readTrust(secrets, trustSecretId);
  if (!trust) throw new Error(`the cluster CA in ${trustSecretId} does not exist yet`);
  const reading = await readCluster(httpsPatroniGet(trust.roots, { timeoutMs: 4000 }), backends);
  publishCluster(metrics, clusterName, reading);
  logger.info('cluster metrics published', {
    primaryCount: reading.primaryCount,
    membersRunning: reading.membersRunning,
    unreachable: reading.members.filter((m) => !m.reachable).map((m) => m.name),
  });
  return reading;
});
