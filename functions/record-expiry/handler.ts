import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { ClusterCaMissingError, readTrust } from '../lib/ca-store';
import { setting } from '../lib/env';
import { logger, withLambdaContext } from '../lib/logger';
import { CERTIFICATE_METRICS } from '../lib/metric-names';
import { commandRefAt, objectAt } from '../lib/event-shape';
import { InvalidRequestError } from '../lib/ssm-run';
import { caExpiry, ExpiryReading, nodeExpiry, publishExpiry } from './expiry';

const ssm = new SSMClient({});
const secrets = new SecretsManagerClient({});
const metrics = new Metrics({
  namespace: CERTIFICATE_METRICS.namespace,
  serviceName: CERTIFICATE_METRICS.service,
});

/**
 * Step Functions task: publishes DaysToExpiry for a node's certificates (from
 * its last certificates command: `{"source": "node", "command": <ref>}`) or
 * for the cluster's CA certificates (`{"source": "ca"}`).
 */
export const handler = withLambdaContext(async (raw: unknown) => {
  const event = objectAt(raw, 'the event');
  let readings: ExpiryReading[];
  switch (event.source) {
    case 'node':
      readings = await nodeExpiry(ssm, commandRefAt(event.command, 'command'));
      break;
    case 'ca': {
      const trustSecretId = setting('TRUST_SECRET');
      const trust = await readTrust(secrets, trustSecretId);
      if (!trust) throw new ClusterCaMissingError(trustSecretId);
      readings = caExpiry(trust);
      break;
    }
    default:
      throw new InvalidRequestError(
        `source must be node or ca; got ${JSON.stringify(event.source) ?? 'nothing'}`,
      );
  }
  publishExpiry(metrics, setting('CLUSTER_NAME'), readings);
  logger.info('certificate expiry recorded', { readings });
  return { minDaysToExpiry: Math.min(...readings.map((r) => r.daysToExpiry)) };
});
