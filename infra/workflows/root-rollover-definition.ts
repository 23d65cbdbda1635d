import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import {
  caExpiryState,
  clusterGateState,
  confirmLeaderState,
  failureEnd,
  GATE_ITEM_FIELDS,
  gatedCertificateStates,
  planState,
  RollingCertificateProps,
} from './certificate-states';
import { NodeCommand } from './node-command';
import { inventoryState, lambdaTask, nodeField, StatePath } from './task-states';

export interface RootRolloverDefinitionProps extends RollingCertificateProps {
  readonly clusterCa: lambda.IFunction;
}

/** A renewal threshold past any leaf's life: every leaf is reissued. */
const REISSUE_EVERYTHING = '3650';

/**
 * Root rollover, started by hand: a new root and issuing CA; every trust
 * file gets both roots (etcd members restart one at a time, each healthy
 * before the next); every leaf is reissued under the new root; then every
 * trust file keeps the new root only (a second rolling etcd restart). Node
 * order as in rotation: etcd, replicas, primary, web. Running it again after
 * a failure resumes the rollover in progress.
 */
export function rootRolloverDefinition(
  scope: Construct,
  props: RootRolloverDefinitionProps,
): sfn.IChainable {
  const { catchInto } = failureEnd(scope, 'Root rollover failed');
  const caStep = (label: string, action: string) =>
    catchInto(
      lambdaTask(scope, label, {
        lambdaFunction: props.clusterCa,
        payload: { action },
        resultSelector: { 'bundle.$': '$.Payload.bundle' },
        resultPath: '$.trust',
      }),
    );
  // Every node of every pass behind a health gate (GATE_ITEM_FIELDS).
  const node = (label: string, itemsPath: string, extra: Record<string, string>) =>
    catchInto(
      new sfn.Map(scope, label, {
        itemsPath,
        itemSelector: { 'node.$': '$$.Map.Item.Value', ...GATE_ITEM_FIELDS, ...extra },
        maxConcurrency: 1,
        resultPath: sfn.JsonPath.DISCARD,
      }),
    );

  const trustEveryNode = (label: string) => {
    const map = node(label, `${StatePath.plan}.order`, { 'bundle.$': '$.trust.bundle' });
    const install = new NodeCommand(scope, `${label}: install`, {
      nodeCommand: props.nodeCommand,
      document: props.certificates,
      parameters: {
        Action: 'install',
        MemberName: sfn.JsonPath.stringAt(nodeField('name')),
        MemberAddress: sfn.JsonPath.stringAt(nodeField('address')),
        AgentId: sfn.JsonPath.stringAt(nodeField('agentId')),
        Identities: sfn.JsonPath.stringAt(nodeField('identities')),
        Bundle: sfn.JsonPath.stringAt('$.bundle'),
      },
      pollInterval: props.pollInterval,
    });
    map.itemProcessor(clusterGateState(scope, label, props.clusterStatus).next(install));
    return map;
  };

  const reissue = node('Reissue every leaf from the new root', `${StatePath.plan}.order`, {
    renewBeforeDays: REISSUE_EVERYTHING,
  });
  reissue.itemProcessor(gatedCertificateStates(scope, 'Reissue', props));
  return inventoryState(scope, props.inventory)
    .next(
      catchInto(
        planState(scope, 'Plan root rollover', props.clusterStatus, { duringRootRollover: true }),
      ),
    )
    .next(caStep('New root and issuing CA', 'begin-root-rollover'))
    .next(trustEveryNode('Trust both roots'))
    .next(reissue)
    .next(caStep('Retire the old root', 'finish-root-rollover'))
    .next(trustEveryNode('Trust the new root only'))
    .next(catchInto(confirmLeaderState(scope, props.clusterStatus)))
    .next(catchInto(caExpiryState(scope, props.recordExpiry)))
    .next(new sfn.Succeed(scope, 'Only the new root is trusted'));
}
