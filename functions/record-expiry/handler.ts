import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { readTrust } from '../lib/ca-store';
import { setting } from '../lib/env';
import { logger, withLambdaContext } from '../lib/logger';
import { CERTIFICATE_METRICS } from '../lib/metric-names';
import { CommandRef, InvalidRequestError } from '../lib/ssm-run';
import { caExpiry, ExpiryReading, nodeExpiry, publishExpiry } from './expiry';

const ssm = new SSMClient({});
const secrets = new SecretsManagerClient({});
const metrics = new Metrics({
  namespace: CERTIFICATE_METRICS.namespace,
  serviceName: CERTIFICATE_METRICS.service,
});

export type RecordExpiryEvent =
  { readonly source: 'node'; readonly command: CommandRef } | { readonly source: 'ca' };

/**
 * Step Functions task: publishes DaysToExpiry for a node's certificates (from
 * its last certificates command) or for the cluster's CA certificates.
 */
export const handler = withLambdaContext(async (event: RecordExpiryEvent) => {
  let readings: ExpiryReading[];
  switch (event?.source) {
    case 'node':
      readings = await nodeExpiry(ssm, event.command);
      break;
    case 'ca': {
      const trustSecretId = setting('TRUST_SECRET');
      const trust = await readTrust(secrets, trustSecretId);
      if (!trust) throw new Error(`the cluster CA in ${trustSecretId} does not exist yet`);
      readings = caExpiry(trust);
      break;
    }
    default:
      throw new InvalidRequestError(
        `source must be node or ca; given ${JSON.stringify((event as { source?: unknown })?.source)}`,
      );
  }
  publishExpiry(metrics, setting('CLUSTER_NAME'), readings);
  logger.info('certificate expiry recorded', { readings });
  return { minDaysToExpiry: Math.min(...readings.map((r) => r.daysToExpiry)) };
});
