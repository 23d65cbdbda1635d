import { EC2Client } from '@aws-sdk/client-ec2';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { readTrust } from '../lib/ca-store';
import { httpsPatroniGet, httpsPatroniSend } from '../lib/patroni';
import { runUpgradeAction, UpgradeEvent } from './actions';
import type { UpgradeClients } from './cluster';

const ec2 = new EC2Client({});
const elb = new ElasticLoadBalancingV2Client({});
const sfn = new SFNClient({});
const secrets = new SecretsManagerClient({});

function setting(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} must be set`);
  return value;
}

async function clients(): Promise<UpgradeClients> {
  const trust = await readTrust(secrets, setting('TRUST_SECRET'));
  if (!trust) throw new Error(`the cluster CA in ${setting('TRUST_SECRET')} does not exist yet`);
  const rest = await secrets.send(
    new GetSecretValueCommand({ SecretId: setting('REST_API_SECRET') }),
  );
  const credentials = JSON.parse(rest.SecretString ?? '{}') as {
    username?: string;
    password?: string;
  };
  if (!credentials.username || !credentials.password) {
    throw new Error(`secret ${setting('REST_API_SECRET')} has no username and password`);
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
export const handler = (event: UpgradeEvent) =>
  runUpgradeAction(event, {
    sfn,
    clients,
    defaults: {
      maxLagBytes: Number(setting('MAX_LAG_BYTES')),
      maxTransactionSeconds: Number(setting('MAX_TRANSACTION_SECONDS')),
    },
  });
