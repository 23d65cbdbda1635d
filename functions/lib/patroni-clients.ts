import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { parseTrust } from './ca-store';
import { setting } from './env';
import { httpsPatroniGet, httpsPatroniSend, type PatroniGet, type PatroniSend } from './patroni';

// Runbooks look every 5 seconds: warm invocations reuse the secrets.
const cachedSecrets = new SecretsProvider({ awsSdkV3Client: new SecretsManagerClient({}) });
// Short: a root rollover changes the roots; a stale list fails nodes re-signed under a new one.
const TRUST_MAX_AGE_SECONDS = 30;
// The REST API password changes only by hand, with a reload on every node (no rotation Lambda).
const REST_API_MAX_AGE_SECONDS = 300;

async function secretString(secretId: string, maxAge: number): Promise<string | undefined> {
  const value = await cachedSecrets.get(secretId, { maxAge });
  return typeof value === 'string' ? value : undefined;
}

/**
 * Patroni REST clients of a runbook function: HTTPS verified against the
 * cluster's roots (secret TRUST_SECRET), changes sent with the REST API's
 * credentials (secret REST_API_SECRET).
 */
export async function patroniClients(): Promise<{
  readonly patroniGet: PatroniGet;
  readonly patroniSend: PatroniSend;
}> {
  const trustSecretId = setting('TRUST_SECRET');
  const trust = parseTrust(trustSecretId, await secretString(trustSecretId, TRUST_MAX_AGE_SECONDS));
  if (!trust) throw new Error(`the cluster CA in ${trustSecretId} does not exist yet`);
  const restApiSecretId = setting('REST_API_SECRET');
  const credentials = JSON.parse(
    (await secretString(restApiSecretId, REST_API_MAX_AGE_SECONDS)) ?? '{}',
  ) as { username?: string; password?: string };
  if (!credentials.username || !credentials.password) {
    throw new Error(`secret ${restApiSecretId} has no username and password`);
  }
  return {
    patroniGet: httpsPatroniGet(trust.roots),
    patroniSend: httpsPatroniSend(trust.roots, {
      username: credentials.username,
      password: credentials.password,
    }),
  };
}
