import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { logger } from '../lib/logger';
import { SignEvent, signNodeRequests } from './sign';

const ssm = new SSMClient({});
const secrets = new SecretsManagerClient({});
const validityDays = Number(process.env.LEAF_VALIDITY_DAYS ?? '90');

/** Step Functions task: signs a node's CSRs. Logs names and counts, never PEM text. */
export const handler = async (event: SignEvent) => {
  const intermediateSecretId = process.env.INTERMEDIATE_CA_SECRET;
  if (!intermediateSecretId)
    throw new Error('environment variable INTERMEDIATE_CA_SECRET must be set');
  const result = await signNodeRequests(ssm, secrets, event, {
    intermediateSecretId,
    validityDays,
  });
  logger.info('certificates signed', { node: event.node.name, identities: result.identities });
  return result;
};
