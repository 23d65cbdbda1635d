import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ErrorName } from '../../functions/lib/errors';
import { bootstrapDefinition, BootstrapDefinitionProps, CatchInto } from './bootstrap-definition';
import { LookUntilReady } from './look-until-ready';
import { DocumentRun, NodeCommand } from './node-command';
import { GATE_RETRY, lambdaTask, StatePath } from './task-states';

export interface ReplacementDefinitionProps extends Omit<
  BootstrapDefinitionProps,
  'first' | 'endNames'
> {
  /** The check run on another etcd member before a member is replaced. */
  readonly etcdQuorum: DocumentRun;
  readonly clusterStatus: lambda.IFunction;
  /** The replacement's own steps (plan, replace-root, look). */
  readonly replaceNode: lambda.IFunction;
  /** Between two looks at EC2's root volume task. @default 15 seconds */
  readonly lookInterval?: Duration;
}

/** Where the plan (the node, and where its quorum check runs) is kept. */
const PLAN = '$.replacement';

/**
 * The node replacement runbook, started by hand with `{"node": "<name>"}`:
 * refuses Patroni's leader, an unknown node, and an etcd member whose peers
 * are not all healthy, before anything is touched; then gives the node's
 * instance a fresh root volume from its launch state (EC2's root volume
 * replacement: same instance, address and data volume, so the stack still
 * describes it) and runs the bootstrap, which rebuilds the node: new
 * certificates, the etcd member removed and added again, Patroni on the
 * volume it finds (or a clone onto a blank one).
 */
export function replacementDefinition(
  scope: Construct,
  props: ReplacementDefinitionProps,
): sfn.IChainable {
  return bootstrapDefinition(scope, {
    ...props,
    endNames: { failed: 'Replacement failed', succeeded: 'Node replaced' },
    first: (catchInto) => {
      const locate = lambdaTask(scope, 'Locate the primary', {
        lambdaFunction: props.clusterStatus,
        payload: { action: 'locate', inventory: sfn.JsonPath.objectAt(StatePath.inventory) },
        resultSelector: { 'leader.$': '$.Payload.leader.name' },
        resultPath: '$.located',
      });
      locate.addRetry({ errors: [ErrorName.ClusterUnhealthy], ...GATE_RETRY, backoffRate: 1 });
      const check = lambdaTask(scope, 'Check the replacement', {
        lambdaFunction: props.replaceNode,
        payload: {
          action: 'plan',
          input: sfn.JsonPath.objectAt('$$.Execution.Input'),
          inventory: sfn.JsonPath.objectAt(StatePath.inventory),
          leader: sfn.JsonPath.stringAt('$.located.leader'),
        },
        resultSelector: {
          'node.$': '$.Payload.node',
          'quorumCheckOn.$': '$.Payload.quorumCheckOn',
        },
        resultPath: PLAN,
      });
      const quorum = new sfn.Map(scope, 'etcd quorum without it', {
        itemsPath: `${PLAN}.quorumCheckOn`,
        itemSelector: {
          'node.$': '$$.Map.Item.Value',
          'leaving.$': `${PLAN}.node.name`,
        },
        maxConcurrency: 1,
        resultPath: sfn.JsonPath.DISCARD,
      });
      quorum.itemProcessor(
        new NodeCommand(scope, 'Other etcd members healthy?', {
          nodeCommand: props.nodeCommand,
          document: props.etcdQuorum,
          parameters: { LeavingMember: sfn.JsonPath.stringAt('$.leaving') },
          pollInterval: props.pollInterval,
        }),
      );
      // Idempotent on a repeated call: the execution's name is EC2's client token.
      const replaceRoot = lambdaTask(scope, 'Replace the root volume', {
        lambdaFunction: props.replaceNode,
        payload: {
          action: 'replace-root',
          node: sfn.JsonPath.objectAt(`${PLAN}.node`),
          executionName: sfn.JsonPath.stringAt('$$.Execution.Name'),
        },
        resultSelector: { 'taskId.$': '$.Payload.taskId' },
        resultPath: '$.rootReplacement',
      });
      const replaced = new LookUntilReady(scope, 'Root volume replaced', {
        lambdaFunction: props.replaceNode,
        payload: {
          action: 'look',
          node: sfn.JsonPath.objectAt(`${PLAN}.node`),
          taskId: sfn.JsonPath.stringAt('$.rootReplacement.taskId'),
        },
        interval: props.lookInterval ?? Duration.seconds(15),
      });
      return sfn.Chain.start(catchInto(locate))
        .next(catchInto(check))
        .next(catchInto(quorum))
        .next(catchInto(replaceRoot))
        .next(catchLooks(replaced, catchInto));
    },
  });
}

/** The look loop's Lambda task routes its errors to the failure end too. */
function catchLooks(loop: LookUntilReady, catchInto: CatchInto): LookUntilReady {
  for (const state of loop.node.children) {
    if (state instanceof sfn.TaskStateBase) catchInto(state);
  }
  return loop;
}
