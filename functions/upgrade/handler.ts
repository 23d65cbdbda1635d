import { EC2Client } from '@aws-sdk/client-ec2';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { setting, wholeNumberSetting } from '../lib/env';
import { withLambdaContext } from '../lib/logger';
import { patroniClients } from '../lib/patroni-clients';
import { runUpgradeAction, UpgradeEvent } from './actions';
import type { UpgradeClients } from './cluster';

const ec2 = new EC2Client({});
const elb = new ElasticLoadBalancingV2Client({});

async function clients(): Promise<UpgradeClients> {
  return {
    ec2,
    elb,
    ...(await patroniClients()),
    targetGroups: {
      write: setting('WRITE_TARGET_GROUP_ARN'),
      read: setting('READ_TARGET_GROUP_ARN'),
      ...(process.env.WEB_TARGET_GROUP_ARN && { web: process.env.WEB_TARGET_GROUP_ARN }),
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
      pem: Boolean(process.env.WEB_TARGET_GROUP_ARN),
    },
  }),
);
