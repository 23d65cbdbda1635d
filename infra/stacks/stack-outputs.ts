import { CfnOutput } from 'aws-cdk-lib';
import type { ClusterPki } from '../constructs/cluster-pki';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { READ_PORT, WRITE_PORT } from '../constructs/database-endpoints';
import type { PemHaStack } from './pem-ha-stack';

/** One runbook: its output, the name its dashboard row shows, what an operator starts it with. */
export interface StackRunbook {
  readonly outputId: string;
  readonly label: string;
  readonly stateMachine: sfn.StateMachine;
  readonly description: string;
}

/** Every runbook of the stack, in the order the README lists them. */
export function stackRunbooks(stack: PemHaStack): StackRunbook[] {
  return [
    {
      outputId: 'BootstrapStateMachineArn',
      label: 'bootstrap',
      stateMachine: stack.bootstrap.stateMachine,
      description: 'Bootstrap runbook: start it again by hand with an empty input',
    },
    {
      outputId: 'RotationStateMachineArn',
      label: 'rotation',
      stateMachine: stack.rotation.stateMachine,
      description:
        'Certificate rotation (scheduled); start by hand with {} or {"renewBeforeDays": N}',
    },
    {
      outputId: 'RootRolloverStateMachineArn',
      label: 'root rollover',
      stateMachine: stack.rotation.rootRollover,
      description: 'Root CA rollover: start by hand with {} (resumes one in progress)',
    },
    ...(stack.agentCertificate
      ? [
          {
            outputId: 'AgentCertificateStateMachineArn',
            label: 'agent certificate',
            stateMachine: stack.agentCertificate.stateMachine,
            description:
              'A certificate for a monitored server\'s PEM agent: start by hand with {"agentUser": "<its database user>", "csr": "<PEM>"} (see README "Monitoring other servers")',
          },
        ]
      : []),
    {
      outputId: 'BackupStateMachineArn',
      label: 'backup',
      stateMachine: stack.scheduledBackups.stateMachine,
      description:
        'Backup runbook (scheduled); start by hand with {"type": "full"} or {"type": "diff"}',
    },
    {
      outputId: 'BackupHealthStateMachineArn',
      label: 'backup health',
      stateMachine: stack.backupMonitoring.stateMachine,
      description: 'Backup health runbook (every 5 minutes): publishes the archive and backup age',
    },
    {
      outputId: 'UpgradeStateMachineArn',
      label: 'upgrade',
      stateMachine: stack.upgrade.stateMachine,
      description:
        'Rolling upgrade: start by hand with {"component": "postgresql", "version": "<exact>|latest"} (see README "Upgrading")',
    },
    {
      outputId: 'RestoreStateMachineArn',
      label: 'restore',
      stateMachine: stack.restore.stateMachine,
      description:
        'Point-in-time restore, in place: start by hand with {"confirm": "<clusterName>", "time": "<ISO 8601>"} (see README "Point-in-time restore")',
    },
    {
      outputId: 'ReplacementStateMachineArn',
      label: 'replacement',
      stateMachine: stack.replacement.stateMachine,
      description:
        'Node replacement: start by hand with {"node": "<name>"} (see README "When a node\'s instance is lost")',
    },
    {
      outputId: 'FailoverStateMachineArn',
      label: 'failover',
      stateMachine: stack.failover.stateMachine,
      description:
        'Failover off a primary that cannot run: start by hand with {} or {"dryRun": true} (see README "When the primary\'s disk fills")',
    },
  ];
}

/**
 * The stack's outputs, under the names the README, the rig and operators'
 * scripts use (made in the stack's scope, so their logical ids are these names).
 */
export function addStackOutputs(
  stack: PemHaStack,
  secretNames: Iterable<readonly [string, string]>,
  monitoring: { readonly dashboardUrl: string; readonly alarmTopicArn: string },
  trust: { readonly pki: ClusterPki; readonly clusterName: string },
): void {
  const { pki } = trust;
  // Where the README and the outputs tell clients to save the roots.
  const rootFile = `${trust.clusterName}-root.crt`;
  for (const { outputId, stateMachine, description } of stackRunbooks(stack)) {
    new CfnOutput(stack, outputId, { value: stateMachine.stateMachineArn, description });
  }

  const nlbDns = stack.endpoints.loadBalancer.loadBalancerDnsName;
  new CfnOutput(stack, 'WriteEndpoint', {
    value: `${nlbDns}:${WRITE_PORT}`,
    description: 'Current primary (NLB health check GET /primary)',
  });
  new CfnOutput(stack, 'ReadEndpoint', {
    value: `${nlbDns}:${READ_PORT}`,
    description: 'Caught-up replicas (NLB health check GET /replica?lag=...)',
  });
  new CfnOutput(stack, 'RootCertificatesParameter', {
    value: pki.rootsParameterName,
    description: `The cluster's root certificates, for clients' sslrootcert: aws ssm get-parameter --name ${pki.rootsParameterName} --query Parameter.Value --output text > ${rootFile}`,
  });
  new CfnOutput(stack, 'MultiHostConnectionString', {
    value: stack.backend.multiHostConnectionString(rootFile),
    description: `libpq URI of every backend (verify-full against ${rootFile}); fails over in seconds without the NLB`,
  });
  new CfnOutput(stack, 'BackupBucketName', {
    value: stack.backups.bucket.bucketName,
    description: `pgBackRest repository (stanza ${stack.backups.stanza}, path ${stack.backups.repositoryPath}); kept when the stack is deleted`,
  });
  new CfnOutput(stack, 'DashboardUrl', {
    value: monitoring.dashboardUrl,
    description: "The cluster's CloudWatch dashboard",
  });
  new CfnOutput(stack, 'AlarmTopicArn', {
    value: monitoring.alarmTopicArn,
    description: 'Every alarm notifies this SNS topic when it fires and when it clears',
  });
  new CfnOutput(stack, 'CertificateExpiryAlarmName', {
    value: stack.rotation.expiryAlarm.alarmName,
  });
  if (stack.web) {
    new CfnOutput(stack, 'WebUrl', { value: stack.web.url, description: 'PEM web UI' });
  }
  new CfnOutput(stack, 'EtcdEndpoints', { value: stack.etcd.clientEndpoints.join(',') });
  for (const [purpose, name] of secretNames) {
    new CfnOutput(stack, `${purpose[0].toUpperCase()}${purpose.slice(1)}SecretName`, {
      value: name,
      description: 'Secrets Manager secret name (the value is never output)',
    });
  }
}
