/**
 * Each node's SSM agent (rig/host/ssm-agent.sh) as a service of the node,
 * enabled at boot like amazon-ssm-agent: it reaches the rig's endpoint only
 * through the node's own link and packet filter.
 */
import type { RigCluster } from './cluster';
import { REGION } from './local-aws/server';

export const SSM_AGENT_UNIT = 'amazon-ssm-agent';

const unitFile = `[Unit]
Description=amazon-ssm-agent stand-in: polls the rig endpoint over this node's link

[Service]
Type=simple
EnvironmentFile=/etc/amazon/ssm/rig-agent.env
ExecStart=/usr/local/sbin/rig-ssm-agent
# As the real unit: stopping the agent leaves running commands alone.
KillMode=process

[Install]
WantedBy=multi-user.target
`;

/** Installs, enables and starts the agent on `node`, registered as `instanceId`. */
export async function installSsmAgent(
  rig: RigCluster,
  node: string,
  instanceId: string,
  endpoint: string,
): Promise<void> {
  await rig.writeFile(
    node,
    '/etc/amazon/ssm/rig-agent.env',
    `RIG_SSM_ENDPOINT=${endpoint}\nRIG_INSTANCE_ID=${instanceId}\n`,
    '0600',
  );
  await rig.writeFile(node, `/etc/systemd/system/${SSM_AGENT_UNIT}.service`, unitFile);
  // What an instance gets from its metadata service (credentials, region), and
  // the endpoint: the metric collector reads them from its local overrides.
  await rig.writeFile(
    node,
    '/etc/default/pem-ha-metrics',
    [
      `AWS_ENDPOINT_URL_CLOUDWATCH=${endpoint}`,
      `AWS_REGION=${REGION}`,
      `AWS_DEFAULT_REGION=${REGION}`,
      'AWS_ACCESS_KEY_ID=rig',
      'AWS_SECRET_ACCESS_KEY=rig',
      'AWS_EC2_METADATA_DISABLED=true',
      // Every 5 minutes unless a test watches the alarms (cloudwatch-feed.ts sets the pace):
      // eight collectors a minute would take CPU from the HA loops the other tests time.
      'INTERVAL_SECONDS=300',
      '',
    ].join('\n'),
    '0600',
  );
  await rig.execOk(node, ['systemctl', 'enable', SSM_AGENT_UNIT]);
  await rig.execOk(node, ['systemctl', 'start', SSM_AGENT_UNIT]);
  // The stand-in logs a failed start; say it here instead.
  const active = await rig.host.exec(node, {
    argv: ['systemctl', 'is-active', SSM_AGENT_UNIT],
    timeoutMs: 10_000,
  });
  if (active.exitCode !== 0) {
    const log = await rig.host.exec(node, {
      argv: ['tail', '-n', '5', `/var/log/rig-units/${SSM_AGENT_UNIT}.service.log`],
      timeoutMs: 10_000,
    });
    throw new Error(`${node}: the SSM agent did not start: ${log.stdout.trim()}`);
  }
}
