import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import type { BootstrapInventory } from './bootstrap-definition';
import {
  caExpiryState,
  confirmLeaderState,
  failureEnd,
  GATE_ITEM_FIELDS,
  gatedCertificateStates,
  gateState,
  planState,
} from './certificate-states';
import { DocumentRun, nodeCommandStates, TASK_TIMEOUT } from './node-command-states';

export interface RootRolloverDefinitionProps {
  readonly inventory: BootstrapInventory;
  readonly certificates: DocumentRun;
  readonly nodeCommand: lambda.IFunction;
  readonly signCertificates: lambda.IFunction;
  readonly recordExpiry: lambda.IFunction;
  readonly clusterStatus: lambda.IFunction;
  readonly clusterCa: lambda.IFunction;
  /** @default 10 seconds */
  readonly pollInterval?: Duration;
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
      new tasks.LambdaInvoke(scope, label, {
        lambdaFunction: props.clusterCa,
        payload: sfn.TaskInput.fromObject({ action }),
        resultSelector: { 'bundle.$': '$.Payload.bundle' },
        resultPath: '$.trust',
        taskTimeout: sfn.Timeout.duration(TASK_TIMEOUT),
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
    const map = node(label, '$.plan.order', { 'bundle.$': '$.trust.bundle' });
    const install = nodeCommandStates(scope, `${label}: install`, {
      nodeCommand: props.nodeCommand,
      document: props.certificates,
      parameters: {
        Action: 'install',
        MemberName: sfn.JsonPath.stringAt('$.node.name'),
        MemberAddress: sfn.JsonPath.stringAt('$.node.address'),
        AgentId: sfn.JsonPath.stringAt('$.node.agentId'),
        Identities: sfn.JsonPath.stringAt('$.node.identities'),
        Bundle: sfn.JsonPath.stringAt('$.bundle'),
      },
      pollInterval: props.pollInterval,
    });
    const gate = gateState(scope, label, props.clusterStatus);
    gate.next(install.start);
    map.itemProcessor(gate);
    return map;
  };

  const reissue = node('Reissue every leaf from the new root', '$.plan.order', {
    renewBeforeDays: REISSUE_EVERYTHING,
  });
  reissue.itemProcessor(
    gatedCertificateStates(scope, 'Reissue', props.clusterStatus, {
      nodeCommand: props.nodeCommand,
      signCertificates: props.signCertificates,
      recordExpiry: props.recordExpiry,
      document: props.certificates,
      renewBeforeDaysPath: '$.renewBeforeDays',
      pollInterval: props.pollInterval,
    }),
  );
  return new sfn.Pass(scope, 'Inventory', {
    result: sfn.Result.fromObject(props.inventory),
    resultPath: '$.inventory',
  })
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
