import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ensureClusterCa } from '../lib/ca-store';
import { logger } from '../lib/logger';

const secrets = new SecretsManagerClient({});

function setting(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} must be set; it is empty`);
  return value;
}

/** Step Functions task: the cluster CA exists afterwards. Logs no key material. */
export const handler = async () => {
  const { created } = await ensureClusterCa(secrets, {
    clusterName: setting('CLUSTER_NAME'),
    rootSecretId: setting('ROOT_CA_SECRET'),
    intermediateSecretId: setting('INTERMEDIATE_CA_SECRET'),
    trustSecretId: setting('TRUST_SECRET'),
  });
  logger.info(created ? 'cluster CA created' : 'cluster CA already exists');
  return { created };
};
