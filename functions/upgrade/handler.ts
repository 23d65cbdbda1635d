import { EC2Client } from '@aws-sdk/client-ec2';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { parseTrust } from '../lib/ca-store';
import { setting, wholeNumberSetting } from '../lib/env';
import { withLambdaContext } from '../lib/logger';
import { httpsPatroniGet, httpsPatroniSend } from '../lib/patroni';
import { runUpgradeAction, UpgradeEvent } from './actions';
import type { UpgradeClients } from './cluster';

const ec2 = new EC2Client({});
const elb = new ElasticLoadBalancingV2Client({});
const secrets = new SecretsManagerClient({});
// The waits look every 5 seconds: warm invocations reuse the secrets, read through `secrets`.
const cachedSecrets = new SecretsProvider({ awsSdkV3Client: secrets });
// Short: a root rollover changes the roots; a stale list fails nodes re-signed under a new one.
const TRUST_MAX_AGE_SECONDS = 30;
// The REST API password changes only by hand, with a reload on every node (no rotation Lambda).
const REST_API_MAX_AGE_SECONDS = 300;

async function secretString(secretId: string, maxAge: number): Promise<string | undefined> {
  const value = await cachedSecrets.get(secretId, { maxAge });
  return typeof value === 'string' ? value : undefined;
}

async function clients(): Promise<UpgradeClients> {
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
    ec2,
    elb,
    patroniGet: httpsPatroniGet(trust.roots),
    patroniSend: httpsPatroniSend(trust.roots, {
      username: credentials.username,
      password: credentials.password,
    }),
    targetGroups: {
      write: setting('WRITE_TARGET_GROUP_ARN'),
      read: setting('READ_TARGET_GROUP_ARN'),
    },
    clusterName: setting('CLUSTER_NAME'),
  };
}

/** Step Functions task of the rolling upgrade: one action per state (see actions.ts). */
export const handler = withLambdaContext((event: UpgradeEvent) =>
  runUpgradeAction(event, {
    clients,
    defaults: {
      maxLagBytes: wholeNumberSetting('MAX_LAG_BYTES', { min: 0, unit: 'bytes' }),
      maxTransactionSeconds: wholeNumberSetting('MAX_TRANSACTION_SECONDS', {
        min: 0,
        unit: 'seconds',
      }),
    },
  }),
);
