import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { ErrorName } from '../../functions/lib/errors';
import type { InventoryNode } from '../../functions/lib/inventory';

/**
 * Where the runbooks keep what passes between their states. A state that
 * writes one of these and the states that read it name it from here.
 */
export const StatePath = {
  /** The cluster's nodes by tier (a Pass state at the start of every runbook). */
  inventory: '$.inventory',
  /** The node a Map iteration works on. */
  node: '$.node',
  /** Patroni's view before a rolling change: leader, timeline, node order. */
  plan: '$.plan',
  /** The leader and timeline a gate compares against, inside a Map iteration. */
  before: '$.before',
  /** A node command's id and its last poll. */
  run: '$.run',
  /** Per-run settings a Map carries into each iteration. */
  settings: '$.settings',
  /** The caught error and cause a Fail state reports. */
  failure: '$.failure',
} as const;

/**
 * The first state of every runbook: the node list lives in the definition,
 * so an execution started by hand needs no inventory in its input.
 */
export function inventoryState(scope: Construct, inventory: object): sfn.Pass {
  return new sfn.Pass(scope, 'Inventory', {
    result: sfn.Result.fromObject(inventory as Record<string, unknown>),
    resultPath: StatePath.inventory,
  });
}

/** A field of the iteration's node, e.g. `$.node.address`. */
export const nodeField = (field: keyof InventoryNode): string => `${StatePath.node}.${field}`;

/** Every Lambda task's state timeout: the functions themselves stop at 60 s. */
export const TASK_TIMEOUT = Duration.seconds(90);

export interface LambdaTaskProps {
  readonly lambdaFunction: lambda.IFunction;
  readonly payload: Record<string, unknown>;
  readonly resultPath: string;
  /** @default - the whole response */
  readonly resultSelector?: Record<string, string>;
  /**
   * Whether the call is repeated on a Lambda service error. Never for a step
   * that acts (sends a command, switches over): the first call may have acted
   * before the error, and a blind repeat would act twice.
   * @default true
   */
  readonly retryOnServiceErrors?: boolean;
}

/** A pem-ha Lambda task: JSON payload, bounded by {@link TASK_TIMEOUT}. */
export function lambdaTask(scope: Construct, id: string, props: LambdaTaskProps) {
  return new tasks.LambdaInvoke(scope, id, {
    lambdaFunction: props.lambdaFunction,
    payload: sfn.TaskInput.fromObject(props.payload),
    resultSelector: props.resultSelector,
    resultPath: props.resultPath,
    taskTimeout: sfn.Timeout.duration(TASK_TIMEOUT),
    retryOnServiceExceptions: props.retryOnServiceErrors ?? true,
  });
}

/** How long a gate waits for the cluster to be healthy again before the run stops. */
export const GATE_RETRY = { interval: Duration.seconds(10), maxAttempts: 6 } as const;

/**
 * `<label>: cluster healthy?`: the function's `gate` action before each node
 * of a rolling runbook, retried on ClusterUnhealthyError for about a minute
 * (any other error at once). `payload` adds what that function compares with.
 */
export function gateState(
  scope: Construct,
  label: string,
  lambdaFunction: lambda.IFunction,
  payload: Record<string, unknown>,
): tasks.LambdaInvoke {
  const gate = lambdaTask(scope, `${label}: cluster healthy?`, {
    lambdaFunction,
    payload: {
      action: 'gate',
      inventory: sfn.JsonPath.objectAt(StatePath.inventory),
      ...payload,
    },
    resultPath: sfn.JsonPath.DISCARD,
  });
  gate.addRetry({ errors: [ErrorName.ClusterUnhealthy], ...GATE_RETRY, backoffRate: 1 });
  return gate;
}
