import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import type { ClusterInventory } from '../../functions/lib/inventory';
import { DocumentRun, NodeCommand } from './node-command';
import { gateState, lambdaTask, nodeField, StatePath } from './task-states';

export interface CertificateStatesProps {
  readonly nodeCommand: lambda.IFunction;
  readonly signCertificates: lambda.IFunction;
  readonly recordExpiry: lambda.IFunction;
  readonly document: DocumentRun;
  /** JsonPath to the renewal threshold (a string), or undefined for the document's default. */
  readonly renewBeforeDaysPath?: string;
  /** @default 10 seconds */
  readonly pollInterval?: Duration;
}

/**
 * One node's certificates, the same in the bootstrap and the rotation: the
 * node makes keys and CSRs for what is missing or expiring, the signer checks
 * and signs them, the node verifies, switches and checks what it serves, and
 * the expiry of what the node now holds is published. Expects `$.node`.
 */
export class NodeCertificates extends sfn.StateMachineFragment {
  readonly startState: sfn.State;
  readonly endStates: sfn.INextable[];

  constructor(scope: Construct, id: string, props: CertificateStatesProps) {
    super(scope, id);
    const node = {
      name: sfn.JsonPath.stringAt(nodeField('name')),
      address: sfn.JsonPath.stringAt(nodeField('address')),
      agentId: sfn.JsonPath.stringAt(nodeField('agentId')),
    };
    const identity = {
      MemberName: node.name,
      MemberAddress: node.address,
      AgentId: node.agentId,
      Identities: sfn.JsonPath.stringAt(nodeField('identities')),
      ...(props.renewBeforeDaysPath && {
        RenewBeforeDays: sfn.JsonPath.stringAt(props.renewBeforeDaysPath),
      }),
    };
    const run = (label: string, parameters: Record<string, string>) =>
      new NodeCommand(this, label, {
        nodeCommand: props.nodeCommand,
        document: props.document,
        parameters,
        pollInterval: props.pollInterval,
      });
    const request = run('Request certificates', { Action: 'request', ...identity });
    const sign = lambdaTask(this, 'Sign certificates', {
      lambdaFunction: props.signCertificates,
      payload: {
        node: { ...node, tier: sfn.JsonPath.stringAt(nodeField('tier')) },
        command: sfn.JsonPath.objectAt(NodeCommand.COMMAND),
      },
      resultSelector: { 'count.$': '$.Payload.count', 'bundle.$': '$.Payload.bundle' },
      resultPath: '$.signed',
    });
    const install = run('Install certificates', {
      Action: 'install',
      ...identity,
      Bundle: sfn.JsonPath.stringAt('$.signed.bundle'),
    });
    // Both commands end by listing the expiry of every certificate the node holds.
    const record = lambdaTask(this, 'Record certificate expiry', {
      lambdaFunction: props.recordExpiry,
      payload: { source: 'node', command: sfn.JsonPath.objectAt(NodeCommand.COMMAND) },
      resultSelector: { 'minDaysToExpiry.$': '$.Payload.minDaysToExpiry' },
      resultPath: '$.expiry',
    });
    request.next(sign);
    sign.next(
      new sfn.Choice(this, 'Anything signed?')
        .when(sfn.Condition.numberGreaterThan('$.signed.count', 0), install)
        .otherwise(record),
    );
    install.next(record);
    this.startState = request.startState;
    this.endStates = [record];
  }
}

/** The task that publishes the CA certificates' expiry. */
export function caExpiryState(
  scope: Construct,
  recordExpiry: lambda.IFunction,
): tasks.LambdaInvoke {
  return lambdaTask(scope, 'Record CA expiry', {
    lambdaFunction: recordExpiry,
    payload: { source: 'ca' },
    resultPath: sfn.JsonPath.DISCARD,
  });
}

/**
 * Patroni's view before a rolling change (one leader, every backend running)
 * and the node order, at `$.plan`: etcd, replicas, the primary, web hosts.
 */
export function planState(
  scope: Construct,
  label: string,
  clusterStatus: lambda.IFunction,
  extra: Record<string, unknown> = {},
): tasks.LambdaInvoke {
  return lambdaTask(scope, label, {
    lambdaFunction: clusterStatus,
    payload: {
      action: 'plan',
      inventory: sfn.JsonPath.objectAt(StatePath.inventory),
      ...extra,
    },
    resultSelector: {
      'leader.$': '$.Payload.leader',
      'timeline.$': '$.Payload.timeline',
      'order.$': '$.Payload.order',
    },
    resultPath: StatePath.plan,
  });
}

/**
 * Before each node of a rolling runbook: one leader (the one `$.before`
 * names), every backend answering, running and caught up, the node done
 * last back among them. ClusterUnhealthyError names the member;
 * LeaderChangedError stops the run at once.
 */
export function clusterGateState(
  scope: Construct,
  label: string,
  clusterStatus: lambda.IFunction,
): tasks.LambdaInvoke {
  return gateState(scope, label, clusterStatus, {
    before: sfn.JsonPath.objectAt(StatePath.before),
  });
}

/** What the rolling certificate runbooks (rotation, root rollover) are given. */
export interface RollingCertificateProps {
  readonly inventory: ClusterInventory;
  /** The certificates node document. */
  readonly certificates: DocumentRun;
  readonly nodeCommand: lambda.IFunction;
  readonly signCertificates: lambda.IFunction;
  readonly recordExpiry: lambda.IFunction;
  readonly clusterStatus: lambda.IFunction;
  /** @default 10 seconds */
  readonly pollInterval?: Duration;
}

/**
 * {@link NodeCertificates} behind a {@link clusterGateState}: one node of a
 * rolling runbook, renewing what expires within the iteration's `$.renewBeforeDays`.
 */
export function gatedCertificateStates(
  scope: Construct,
  gateLabel: string,
  props: RollingCertificateProps,
): sfn.Chain {
  return sfn.Chain.start(clusterGateState(scope, gateLabel, props.clusterStatus)).next(
    new NodeCertificates(scope, 'Node certificates', {
      nodeCommand: props.nodeCommand,
      signCertificates: props.signCertificates,
      recordExpiry: props.recordExpiry,
      document: props.certificates,
      renewBeforeDaysPath: '$.renewBeforeDays',
      pollInterval: props.pollInterval,
    }),
  );
}

/** What a gated Map iteration needs besides its node: the inventory and the plan's leader. */
export const GATE_ITEM_FIELDS = {
  'inventory.$': StatePath.inventory,
  before: { 'leader.$': `${StatePath.plan}.leader`, 'timeline.$': `${StatePath.plan}.timeline` },
} as const;

/** After the change: the leader and timeline `$.plan` recorded (LeaderChangedError otherwise). */
export function confirmLeaderState(
  scope: Construct,
  clusterStatus: lambda.IFunction,
): tasks.LambdaInvoke {
  return lambdaTask(scope, 'Confirm leader unchanged', {
    lambdaFunction: clusterStatus,
    payload: {
      action: 'confirm',
      inventory: sfn.JsonPath.objectAt(StatePath.inventory),
      before: {
        leader: sfn.JsonPath.stringAt(`${StatePath.plan}.leader`),
        timeline: sfn.JsonPath.numberAt(`${StatePath.plan}.timeline`),
      },
    },
    resultPath: sfn.JsonPath.DISCARD,
  });
}

/**
 * The one failure end of a runbook: a Fail state that reports the caught
 * error and cause (`$.failure`), and a function that routes a state's errors
 * there. With `left`, the cause ends with what the runbook left the cluster
 * as (` | The cluster is left: <left>`), through a Pass named after the state.
 */
export function failureEnd(scope: Construct, name: string) {
  const failed = new sfn.Fail(scope, name, {
    errorPath: `${StatePath.failure}.Error`,
    causePath: `${StatePath.failure}.Cause`,
  });
  const catchInto = <T extends sfn.TaskStateBase | sfn.Map>(state: T, left?: string): T => {
    const handler =
      left === undefined
        ? failed
        : new sfn.Pass(scope, `${state.id}: left`, {
            parameters: {
              Error: sfn.JsonPath.stringAt(`${StatePath.failure}.Error`),
              Cause: sfn.JsonPath.format(
                // Braces in the text are literal, not placeholders.
                `{} | The cluster is left: ${left.replace(/[{}]/g, '\\$&')}`,
                sfn.JsonPath.stringAt(`${StatePath.failure}.Cause`),
              ),
            },
            resultPath: StatePath.failure,
          }).next(failed);
    state.addCatch(handler, { resultPath: StatePath.failure });
    return state;
  };
  return { failed, catchInto };
}
