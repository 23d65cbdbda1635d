import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { setting, wholeNumberSetting } from '../lib/env';
import { logger, withLambdaContext } from '../lib/logger';
import { commandRefAt, nodeFactsAt, objectAt } from '../lib/event-shape';
import { SignEvent, signNodeRequests, signOutsideAgent } from './sign';

const ssm = new SSMClient({});
const secrets = new SecretsManagerClient({});

const settings = () => ({
  intermediateSecretId: setting('INTERMEDIATE_CA_SECRET'),
  validityDays: wholeNumberSetting('LEAF_VALIDITY_DAYS', { min: 1, unit: 'days' }),
});

/**
 * Step Functions task: signs a node's CSRs (`{ node, command }`), or an
 * outside PEM agent's (`{ outsideAgent: { agentUser, csr } }`, the agent
 * certificate runbook). Logs names and counts, never PEM text.
 */
export const handler = withLambdaContext(async (raw: unknown) => {
  const fields = objectAt(raw, 'the event');
  if ('outsideAgent' in fields) {
    const request = objectAt(fields.outsideAgent, 'outsideAgent');
    const issued = await signOutsideAgent(
      secrets,
      { agentUser: request.agentUser, csr: request.csr },
      settings(),
    );
    logger.info('outside agent certificate signed', {
      agentUser: issued.agentUser,
      serial: issued.serial,
      notAfter: issued.notAfter,
    });
    return issued;
  }
  const event: SignEvent = {
    node: nodeFactsAt(fields.node, 'node'),
    command: commandRefAt(fields.command, 'command'),
  };
  const result = await signNodeRequests(ssm, secrets, event, {
    ...settings(),
    databaseEndpointName: process.env.DATABASE_ENDPOINT_NAME || undefined,
  });
  logger.info('certificates signed', { node: event.node.name, identities: result.identities });
  return result;
});
