import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { setting, wholeNumberSetting } from '../lib/env';
import { logger, withLambdaContext } from '../lib/logger';
import { commandRefAt, nodeFactsAt, objectAt } from '../lib/event-shape';
import { SignEvent, signNodeRequests } from './sign';

const ssm = new SSMClient({});
const secrets = new SecretsManagerClient({});

/** Step Functions task: signs a node's CSRs. Logs names and counts, never PEM text. */
export const handler = withLambdaContext(async (raw: unknown) => {
  const fields = objectAt(raw, 'the event');
  const event: SignEvent = {
    node: nodeFactsAt(fields.node, 'node'),
    command: commandRefAt(fields.command, 'command'),
  };
  const result = await signNodeRequests(ssm, secrets, event, {
    intermediateSecretId: setting('INTERMEDIATE_CA_SECRET'),
    validityDays: wholeNumberSetting('LEAF_VALIDITY_DAYS', { min: 1, unit: 'days' }),
    databaseEndpointName: process.env.DATABASE_ENDPOINT_NAME || undefined,
  });
  logger.info('certificates signed', { node: event.node.name, identities: result.identities });
  return result;
});
