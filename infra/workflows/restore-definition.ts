import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { ClusterInventory } from '../../functions/lib/inventory';
import { failureEnd } from './certificate-states';
import { DocumentRun, NodeCommand } from './node-command';
import { ErrorName } from '../../functions/lib/errors';
import { GATE_RETRY, inventoryState, lambdaTask, nodeField, StatePath } from './task-states';

export interface RestoreDefinitionProps {
  readonly inventory: ClusterInventory;
  readonly documents: {
    readonly restore: DocumentRun;
    /** With its run bound raised to the restore's: the leader's start is the restore itself. */
    readonly patroni: DocumentRun;
    readonly backup: DocumentRun;
  };
  readonly restore: lambda.IFunction;
  readonly clusterStatus: lambda.IFunction;
  readonly nodeCommand: lambda.IFunction;
  /** How long the restore node's Patroni may take to restore and promote. */
  readonly restoreSeconds: number;
}

/** The checked request, then the plan the backups allow. */
const CHECKED = '$.checked';
const PLAN = '$.restore.plan';

/**
 * The point-in-time restore runbook, started by hand. Before anything is
 * touched: the input (target and confirm) and that no other runbook runs, then
 * the target against the repository's backups. Then, in place: stop Patroni on
 * every backend, clear the cluster in etcd, set the data aside (kept on the
 * first backend, which restores), bootstrap that backend from the repository
 * with Patroni's custom bootstrap, take a full backup on the new timeline,
 * clone the other backends from it, and run the leader's normal configuration.
 * A failure ends in `Restore failed`: the named error, the node, and what state
 * the cluster was left in with what to run next.
 */
export function restoreDefinition(scope: Construct, props: RestoreDefinitionProps): sfn.IChainable {
  const [first, ...others] = props.inventory.backend;
  // Every failure's cause ends with what the cluster was left as.
  const { catchInto: leaving } = failureEnd(scope, 'Restore failed');
  const command = (label: string, document: DocumentRun, parameters: Record<string, string>) =>
    new NodeCommand(scope, label, { nodeCommand: props.nodeCommand, document, parameters });
  const onEach = (
    label: string,
    group: 'restoreNode' | 'others' | 'backend',
    processor: sfn.IChainable,
    left: string,
    maxConcurrency = 0,
  ) => {
    const map = new sfn.Map(scope, label, {
      itemsPath: `${StatePath.inventory}.${group}`,
      itemSelector: { 'node.$': '$$.Map.Item.Value', 'plan.$': PLAN },
      maxConcurrency,
      resultPath: sfn.JsonPath.DISCARD,
    });
    map.itemProcessor(processor);
    return leaving(map, left);
  };
  const restoreAction = (label: string, action: string, keepData = false) =>
    command(label, props.documents.restore, { Action: action, KeepData: String(keepData) });
  const patroni = (label: string, parameters: Record<string, string>) =>
    command(label, props.documents.patroni, {
      MemberName: sfn.JsonPath.stringAt(nodeField('name')),
      MemberAddress: sfn.JsonPath.stringAt(nodeField('address')),
      DataVolumeId: sfn.JsonPath.stringAt(nodeField('dataVolumeId')),
      ...parameters,
    });

  const check = leaving(
    lambdaTask(scope, 'Check the request', {
      lambdaFunction: props.restore,
      payload: {
        action: 'request',
        input: sfn.JsonPath.objectAt('$'),
      },
      resultSelector: { 'request.$': '$.Payload' },
      resultPath: CHECKED,
    }),
    'untouched.',
  );
  const inventory = inventoryState(scope, { ...props.inventory, restoreNode: [first], others });
  // The info command and the plan run inside a one-item Map: the node is the restore node.
  const readBackups = new sfn.Map(scope, 'Read the repository', {
    itemsPath: `${StatePath.inventory}.restoreNode`,
    itemSelector: { 'node.$': '$$.Map.Item.Value', 'request.$': `${CHECKED}.request` },
    resultSelector: { 'plan.$': '$[0].plan' },
    resultPath: '$.restore',
  });
  readBackups.itemProcessor(
    restoreAction('List the backups', 'info')
      .next(
        lambdaTask(scope, 'Check the target', {
          lambdaFunction: props.restore,
          payload: {
            action: 'plan',
            request: sfn.JsonPath.objectAt('$.request'),
            command: sfn.JsonPath.objectAt(NodeCommand.COMMAND),
          },
          resultSelector: { 'plan.$': '$.Payload' },
          resultPath: '$.planned',
        }),
      )
      .next(new sfn.Pass(scope, 'The plan', { outputPath: '$.planned' })),
  );
  leaving(readBackups, 'untouched.');

  // Every replica streaming on the new leader's timeline, retried for about a minute.
  const healthyCluster = () => {
    const healthy = lambdaTask(scope, 'Restored: cluster healthy?', {
      lambdaFunction: props.clusterStatus,
      payload: { action: 'healthy', inventory: sfn.JsonPath.objectAt(StatePath.inventory) },
      resultPath: sfn.JsonPath.DISCARD,
    });
    healthy.addRetry({ errors: [ErrorName.ClusterUnhealthy], ...GATE_RETRY, backoffRate: 1 });
    return healthy;
  };
  const rerun = 'Run the restore again (the data from before it stays set aside).';
  const afterRestore =
    'the restored leader runs and takes writes. Start the backup runbook with {"type": "full"}, then the bootstrap runbook to clone the other backends (do not run the restore again: it would undo writes made since).';
  return check
    .next(inventory)
    .next(readBackups)
    .next(
      onEach(
        'Stop every backend',
        'backend',
        restoreAction('Stop Patroni', 'stop'),
        `Patroni stopped on some or all backends, every data directory unchanged. ${rerun} Or run the bootstrap runbook to start the cluster as it was.`,
      ),
    )
    .next(
      onEach(
        'Clear the cluster in etcd',
        'restoreNode',
        restoreAction('Remove the cluster state', 'clear-dcs'),
        `Patroni stopped on every backend, data unchanged, the cluster state in etcd partly removed. ${rerun}`,
      ),
    )
    .next(
      onEach(
        "Set the restore node's data aside",
        'restoreNode',
        restoreAction('Keep the data aside', 'set-aside', true),
        `Patroni stopped everywhere, no cluster in etcd; the first backend's data may be in <data>.before-restore-<time>. ${rerun}`,
      ),
    )
    .next(
      onEach(
        "Empty the other backends' data",
        'others',
        restoreAction('Remove the data', 'set-aside'),
        `Patroni stopped everywhere, no cluster in etcd, the first backend's data in <data>.before-restore-<time>. ${rerun}`,
      ),
    )
    .next(
      onEach(
        'Restore the leader',
        'restoreNode',
        patroni('Bootstrap from the repository', {
          Bootstrap: 'true',
          RestoreTarget: sfn.JsonPath.stringAt('$.plan.restoreTarget'),
          RestoreSet: sfn.JsonPath.stringAt('$.plan.restoreSet'),
          StartTimeoutSeconds: String(props.restoreSeconds),
        }),
        `the first backend failed to restore (journalctl -u patroni and /var/log/pgbackrest on it say why); its data from before is in <data>.before-restore-<time>, the others are empty. Run the restore again with a target the repository can reach.`,
      ),
    )
    .next(
      onEach(
        'Back up the new timeline',
        'restoreNode',
        command('Take a full backup', props.documents.backup, {
          Action: 'full',
          MemberAddress: sfn.JsonPath.stringAt(nodeField('address')),
        }),
        afterRestore,
      ),
    )
    .next(
      onEach(
        'Clone the other backends',
        'others',
        patroni('Start as a replica', { Bootstrap: 'false' }),
        `the restored leader runs with a full backup; some backends are not cloned yet. Run the bootstrap runbook to clone them.`,
        1,
      ),
    )
    .next(
      onEach(
        'Return to the normal configuration',
        'restoreNode',
        patroni('Configure the leader as usual', { Bootstrap: 'true' }),
        'restored, with every backend cloned; the leader still has the restore in patroni.yml (unused once bootstrapped). Run the bootstrap runbook.',
      ),
    )
    .next(
      leaving(
        healthyCluster(),
        'restored, but not every replica streams within a minute. Check patronictl list; the bootstrap runbook converges it.',
      ),
    )
    .next(new sfn.Succeed(scope, 'Cluster restored'));
}
