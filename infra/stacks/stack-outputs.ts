import { CfnOutput } from 'aws-cdk-lib';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { READ_PORT, WRITE_PORT } from '../constructs/database-endpoints';
import type { PemHaStack } from './pem-ha-stack';

/**
 * The stack's outputs, under the names the README, the rig and operators'
 * scripts use (made in the stack's scope, so their logical ids are these names).
 */
export function addStackOutputs(
  stack: PemHaStack,
  secretNames: Iterable<readonly [string, string]>,
): void {
  // The runbooks an operator starts by hand (or watches), by the output names the README uses.
  const runbooks: [string, sfn.IStateMachine, string][] = [
    [
      'BootstrapStateMachineArn',
      stack.bootstrap.stateMachine,
      'Bootstrap runbook: start it again by hand with an empty input',
    ],
    [
      'RotationStateMachineArn',
      stack.rotation.stateMachine,
      'Certificate rotation (scheduled); start by hand with {} or {"renewBeforeDays": N}',
    ],
    [
      'RootRolloverStateMachineArn',
      stack.rotation.rootRollover,
      'Root CA rollover: start by hand with {} (resumes one in progress)',
    ],
    [
      'BackupStateMachineArn',
      stack.scheduledBackups.stateMachine,
      'Backup runbook (scheduled); start by hand with {"type": "full"} or {"type": "diff"}',
    ],
    [
      'BackupHealthStateMachineArn',
      stack.backupMonitoring.stateMachine,
      'Backup health runbook (every 5 minutes): publishes the archive and backup age',
    ],
    [
      'UpgradeStateMachineArn',
      stack.upgrade.stateMachine,
      'Rolling upgrade: start by hand with {"component": "postgresql", "version": "<exact>|latest"} (see README "Upgrading")',
    ],
    [
      'RestoreStateMachineArn',
      stack.restore.stateMachine,
      'Point-in-time restore, in place: start by hand with {"confirm": "<clusterName>", "time": "<ISO 8601>"} (see README "Point-in-time restore")',
    ],
    [
      'ReplacementStateMachineArn',
      stack.replacement.stateMachine,
      'Node replacement: start by hand with {"node": "<name>"} (see README "When a node\'s instance is lost")',
    ],
    [
      'FailoverStateMachineArn',
      stack.failover.stateMachine,
      'Failover off a primary that cannot run: start by hand with {} or {"dryRun": true} (see README "When the primary\'s disk fills")',
    ],
  ];
  for (const [id, stateMachine, description] of runbooks) {
    new CfnOutput(stack, id, { value: stateMachine.stateMachineArn, description });
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
  new CfnOutput(stack, 'MultiHostConnectionString', {
    value: stack.backend.multiHostConnectionString(),
    description: 'libpq URI of every backend; fails over in seconds without the NLB',
  });
  new CfnOutput(stack, 'BackupBucketName', {
    value: stack.backups.bucket.bucketName,
    description: `pgBackRest repository (stanza ${stack.backups.stanza}, path ${stack.backups.repositoryPath}); kept when the stack is deleted`,
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
