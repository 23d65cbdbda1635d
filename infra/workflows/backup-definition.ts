import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ErrorName } from '../../functions/lib/errors';
import type { ClusterInventory } from '../../functions/lib/inventory';
import { failureEnd } from './certificate-states';
import { DocumentRun, NodeCommand } from './node-command';
import { GATE_RETRY, inventoryState, lambdaTask, nodeField, StatePath } from './task-states';

export interface BackupDefinitionProps {
  readonly inventory: ClusterInventory;
  /** The backup document. */
  readonly backup: DocumentRun;
  readonly clusterStatus: lambda.IFunction;
  readonly nodeCommand: lambda.IFunction;
}

/** Where the located primary is kept, as a one-item list the Map runs over. */
const LOCATED = '$.located';

/** A Map over the located primary: one iteration, on the node Patroni calls leader. */
const primaryItems = { itemsPath: `${LOCATED}.primary`, maxConcurrency: 1 } as const;

/**
 * A cluster-status read both runbooks start with, retried for about a minute
 * while there is no single leader, as during a failover.
 */
function clusterStatusRead(
  scope: Construct,
  id: string,
  clusterStatus: lambda.IFunction,
  action: 'locate' | 'backupSource',
  result: { readonly resultSelector: Record<string, string>; readonly resultPath: string },
) {
  const read = lambdaTask(scope, id, {
    lambdaFunction: clusterStatus,
    payload: { action, inventory: sfn.JsonPath.objectAt(StatePath.inventory) },
    ...result,
  });
  read.addRetry({ errors: [ErrorName.ClusterUnhealthy], ...GATE_RETRY, backoffRate: 1 });
  return read;
}

/** Patroni's leader, as a one-item list at {@link LOCATED}. */
const locatePrimary = (scope: Construct, clusterStatus: lambda.IFunction) =>
  clusterStatusRead(scope, 'Locate the primary', clusterStatus, 'locate', {
    resultSelector: { 'primary.$': 'States.Array($.Payload.leader)' },
    resultPath: LOCATED,
  });

/**
 * The member a backup is taken on, as a one-item list at `$.source.node`:
 * a caught-up replica, else the primary, with why.
 */
const chooseSource = (scope: Construct, clusterStatus: lambda.IFunction) =>
  clusterStatusRead(scope, 'Choose the backup source', clusterStatus, 'backupSource', {
    resultSelector: {
      'node.$': 'States.Array($.Payload.node)',
      'from.$': '$.Payload.from',
      'reason.$': '$.Payload.reason',
    },
    resultPath: '$.source',
  });

/**
 * The backup runbook: choose the member through Patroni (a
 * replica caught up by the replay rule, else the primary; retried for about
 * a minute while there is no single leader, as during a failover), take the
 * backup there with the backup document (on a replica pgBackRest copies the
 * files there and starts and stops the backup on the primary through its TLS
 * server); pgBackRest then expires what the retention no longer needs.
 * Input: `{ "type": "full" }` or `{ "type": "diff" }`, checked before this
 * definition starts (functions/lib/runbook-inputs.ts). Any failure ends in
 * `Backup failed` with the named error and the node.
 */
export function backupDefinition(scope: Construct, props: BackupDefinitionProps): sfn.IChainable {
  const { catchInto } = failureEnd(scope, 'Backup failed');
  const onSource = new sfn.Map(scope, 'Back up on the source', {
    itemsPath: '$.source.node',
    maxConcurrency: 1,
    itemSelector: { 'node.$': '$$.Map.Item.Value', 'type.$': '$.type' },
    resultPath: sfn.JsonPath.DISCARD,
  });
  onSource.itemProcessor(
    new NodeCommand(scope, 'Take the backup', {
      nodeCommand: props.nodeCommand,
      document: props.backup,
      parameters: {
        Action: sfn.JsonPath.stringAt('$.type'),
        MemberAddress: sfn.JsonPath.stringAt(nodeField('address')),
      },
    }),
  );
  const inventory = inventoryState(scope, props.inventory);
  inventory
    .next(catchInto(chooseSource(scope, props.clusterStatus)))
    .next(catchInto(onSource))
    .next(new sfn.Succeed(scope, 'Backup taken', { outputPath: '$.source' }));
  return inventory;
}

export interface BackupHealthDefinitionProps {
  readonly inventory: ClusterInventory;
  /** The backup document, with the status action's own (short) bound. */
  readonly backup: DocumentRun;
  readonly clusterStatus: lambda.IFunction;
  readonly nodeCommand: lambda.IFunction;
  readonly recordBackupHealth: lambda.IFunction;
}

/**
 * The backup health runbook (scheduled): locate the primary, run the backup
 * document's status action there, publish what it reports as metrics. Its
 * output's `health` is what was published. A run that fails publishes
 * nothing, and the alarms count missing data as breaching.
 */
export function backupHealthDefinition(
  scope: Construct,
  props: BackupHealthDefinitionProps,
): sfn.IChainable {
  const { catchInto } = failureEnd(scope, 'Health not recorded');
  const onPrimary = new sfn.Map(scope, 'Read the primary', {
    ...primaryItems,
    itemSelector: { 'node.$': '$$.Map.Item.Value' },
    resultSelector: { 'health.$': '$[0].health' },
    resultPath: '$.recorded',
  });
  onPrimary.itemProcessor(
    new NodeCommand(scope, 'Read the backup status', {
      nodeCommand: props.nodeCommand,
      document: props.backup,
      parameters: {
        Action: 'status',
        MemberAddress: sfn.JsonPath.stringAt(nodeField('address')),
      },
    })
      .next(
        lambdaTask(scope, 'Record backup health', {
          lambdaFunction: props.recordBackupHealth,
          payload: { command: sfn.JsonPath.objectAt(NodeCommand.COMMAND) },
          resultSelector: { 'health.$': '$.Payload' },
          resultPath: '$.recorded',
        }),
      )
      .next(new sfn.Pass(scope, 'Health of the primary', { outputPath: '$.recorded' })),
  );
  return inventoryState(scope, props.inventory)
    .next(catchInto(locatePrimary(scope, props.clusterStatus)))
    .next(catchInto(onPrimary))
    .next(new sfn.Pass(scope, 'Health', { outputPath: '$.recorded' }))
    .next(new sfn.Succeed(scope, 'Health recorded'));
}
