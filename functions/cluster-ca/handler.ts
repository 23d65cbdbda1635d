import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ClusterCaSettings, ensureClusterCa } from '../lib/ca-store';
import { setting } from '../lib/env';
import { logger, withLambdaContext } from '../lib/logger';
import { beginRootRollover, finishRootRollover } from '../lib/root-rollover';
import { InvalidRequestError } from '../lib/ssm-run';

const secrets = new SecretsManagerClient({});

export interface ClusterCaEvent {
  /** @default 'ensure' */
  readonly action?: 'ensure' | 'begin-root-rollover' | 'finish-root-rollover';
}

/**
 * Step Functions task over the CA secrets: make the CA once (`ensure`, the
 * bootstrap's step), or the two halves of a root rollover. Logs no key material.
 */
export const handler = withLambdaContext(async (event: ClusterCaEvent = {}) => {
  const settings: ClusterCaSettings = {
    clusterName: setting('CLUSTER_NAME'),
    rootSecretId: setting('ROOT_CA_SECRET'),
    intermediateSecretId: setting('INTERMEDIATE_CA_SECRET'),
    trustSecretId: setting('TRUST_SECRET'),
  };
  switch (event?.action ?? 'ensure') {
    case 'ensure': {
      const { created } = await ensureClusterCa(secrets, settings);
      logger.info(created ? 'cluster CA created' : 'cluster CA already exists');
      return { created };
    }
    case 'begin-root-rollover': {
      const step = await beginRootRollover(secrets, settings);
      logger.info('root rollover begun: both roots trusted, new issuing CA', { roots: step.roots });
      return step;
    }
    case 'finish-root-rollover': {
      const step = await finishRootRollover(secrets, settings);
      logger.info('root rollover finished: only the new root trusted', { roots: step.roots });
      return step;
    }
    default:
      throw new InvalidRequestError(
        `action must be ensure, begin-root-rollover or finish-root-rollover; given ${JSON.stringify(event.action)}`,
      );
  }
});
