import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { DocumentRun, nodeCommandStates, TASK_TIMEOUT } from './node-command-states';

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
export function certificateStates(
  scope: Construct,
  props: CertificateStatesProps,
): { readonly start: sfn.State; readonly end: sfn.INextable } {
  const node = {
    name: sfn.JsonPath.stringAt('$.node.name'),
    address: sfn.JsonPath.stringAt('$.node.address'),
    agentId: sfn.JsonPath.stringAt('$.node.agentId'),
  };
  const identity = {
    MemberName: node.name,
    MemberAddress: node.address,
    AgentId: node.agentId,
    Identities: sfn.JsonPath.stringAt('$.node.identities'),
    ...(props.renewBeforeDaysPath && {
      RenewBeforeDays: sfn.JsonPath.stringAt(props.renewBeforeDaysPath),
    }),
  };
  const run = (label: string, parameters: Record<string, string>) =>
    nodeCommandStates(scope, label, {
      nodeCommand: props.nodeCommand,
      document: props.document,
      parameters,
      pollInterval: props.pollInterval,
    });
  const request = run('Request certificates', { Action: 'request', ...identity });
  const sign = new tasks.LambdaInvoke(scope, 'Sign certificates', {
    lambdaFunction: props.signCertificates,
    payload: sfn.TaskInput.fromObject({
      node: { ...node, tier: sfn.JsonPath.stringAt('$.node.tier') },
      command: sfn.JsonPath.objectAt('$.run.command'),
    }),
    resultSelector: { 'count.$': '$.Payload.count', 'bundle.$': '$.Payload.bundle' },
    resultPath: '$.signed',
    taskTimeout: sfn.Timeout.duration(TASK_TIMEOUT),
  });
  const install = run('Install certificates', {
    Action: 'install',
    ...identity,
    Bundle: sfn.JsonPath.stringAt('$.signed.bundle'),
  });
  // Both commands end by listing the expiry of every certificate the node holds.
  const record = new tasks.LambdaInvoke(scope, 'Record certificate expiry', {
    lambdaFunction: props.recordExpiry,
    payload: sfn.TaskInput.fromObject({
      source: 'node',
      command: sfn.JsonPath.objectAt('$.run.command'),
    }),
    resultSelector: { 'minDaysToExpiry.$': '$.Payload.minDaysToExpiry' },
    resultPath: '$.expiry',
    taskTimeout: sfn.Timeout.duration(TASK_TIMEOUT),
  });
  request.end.next(sign);
  sign.next(
    new sfn.Choice(scope, 'Anything signed?')
      .when(sfn.Condition.numberGreaterThan('$.signed.count', 0), install.start)
      .otherwise(record),
  );
  install.end.next(record);
  return { start: request.start, end: record };
}

/** The task that publishes the CA certificates' expiry. */
export function caExpiryState(
  scope: Construct,
  recordExpiry: lambda.IFunction,
): tasks.LambdaInvoke {
  return new tasks.LambdaInvoke(scope, 'Record CA expiry', {
    lambdaFunction: recordExpiry,
    payload: sfn.TaskInput.fromObject({ source: 'ca' }),
    resultPath: sfn.JsonPath.DISCARD,
    taskTimeout: sfn.Timeout.duration(TASK_TIMEOUT),
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
  return new tasks.LambdaInvoke(scope, label, {
    lambdaFunction: clusterStatus,
    payload: sfn.TaskInput.fromObject({
      action: 'plan',
      inventory: sfn.JsonPath.objectAt('$.inventory'),
      ...extra,
    }),
    resultSelector: {
      'leader.$': '$.Payload.leader',
      'timeline.$': '$.Payload.timeline',
      'order.$': '$.Payload.order',
    },
    resultPath: '$.plan',
    taskTimeout: sfn.Timeout.duration(TASK_TIMEOUT),
  });
}

/** How long a gate waits for the cluster to be healthy again before the run stops. */
export const GATE_RETRY = { interval: Duration.seconds(10), maxAttempts: 6 } as const;

/**
 * Before each node of a rolling runbook: one leader (the one `$.before`
 * names), every backend answering, running and caught up, the node done
 * last back among them. Retried for about a minute, then the run stops with
 * ClusterUnhealthyError naming the member (LeaderChangedError at once).
 * Expects `$.inventory` and `$.before` ({ leader, timeline }).
 */
export function gateState(
  scope: Construct,
  label: string,
  clusterStatus: lambda.IFunction,
): tasks.LambdaInvoke {
  const gate = new tasks.LambdaInvoke(scope, `${label}: cluster healthy?`, {
    lambdaFunction: clusterStatus,
    payload: sfn.TaskInput.fromObject({
      action: 'gate',
      inventory: sfn.JsonPath.objectAt('$.inventory'),
      before: sfn.JsonPath.objectAt('$.before'),
    }),
    resultPath: sfn.JsonPath.DISCARD,
    taskTimeout: sfn.Timeout.duration(TASK_TIMEOUT),
  });
  gate.addRetry({ errors: ['ClusterUnhealthyError'], ...GATE_RETRY, backoffRate: 1 });
  return gate;
}

/** {@link certificateStates} behind a {@link gateState}: one node of a rolling runbook. */
export function gatedCertificateStates(
  scope: Construct,
  gateLabel: string,
  clusterStatus: lambda.IFunction,
  props: CertificateStatesProps,
): tasks.LambdaInvoke {
  const gate = gateState(scope, gateLabel, clusterStatus);
  gate.next(certificateStates(scope, props).start);
  return gate;
}

/** What a gated Map iteration needs besides its node: the inventory and the plan's leader. */
export const GATE_ITEM_FIELDS = {
  'inventory.$': '$.inventory',
  before: { 'leader.$': '$.plan.leader', 'timeline.$': '$.plan.timeline' },
} as const;

/** After the change: the leader and timeline `$.plan` recorded (LeaderChangedError otherwise). */
export function confirmLeaderState(
  scope: Construct,
  clusterStatus: lambda.IFunction,
): tasks.LambdaInvoke {
  return new tasks.LambdaInvoke(scope, 'Confirm leader unchanged', {
    lambdaFunction: clusterStatus,
    payload: sfn.TaskInput.fromObject({
      action: 'confirm',
      inventory: sfn.JsonPath.objectAt('$.inventory'),
      before: {
        leader: sfn.JsonPath.stringAt('$.plan.leader'),
        timeline: sfn.JsonPath.numberAt('$.plan.timeline'),
      },
    }),
    resultPath: sfn.JsonPath.DISCARD,
    taskTimeout: sfn.Timeout.duration(TASK_TIMEOUT),
  });
}

/**
 * The one failure end of a runbook: a Fail state that reports the caught
 * error and cause (`$.failure`), and a function that routes a state's errors there.
 */
export function failureEnd(scope: Construct, name: string) {
  const failed = new sfn.Fail(scope, name, {
    errorPath: '$.failure.Error',
    causePath: '$.failure.Cause',
  });
  const catchInto = <T extends sfn.TaskStateBase | sfn.Map>(state: T): T => {
    state.addCatch(failed, { resultPath: '$.failure' });
    return state;
  };
  return { failed, catchInto };
}
