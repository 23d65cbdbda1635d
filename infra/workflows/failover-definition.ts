import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ErrorName } from '../../functions/lib/errors';
import type { ClusterInventory } from '../../functions/lib/inventory';
import { failureEnd } from './certificate-states';
import { DocumentRun, NodeCommand } from './node-command';
import { inventoryState, lambdaTask, StatePath } from './task-states';

export interface FailoverDefinitionProps {
  readonly inventory: ClusterInventory;
  /** The failover node document (inspect, release-reserve). */
  readonly document: DocumentRun;
  readonly nodeCommand: lambda.IFunction;
  /** The failover's own task function (read, plan, hand-over, check). */
  readonly failover: lambda.IFunction;
  /** Between polls of a node command. @default 5 seconds */
  readonly pollInterval?: Duration;
}

/** Where the request and Patroni's members, the inspections and the plan are kept. */
const READ = '$.read';
const INSPECTIONS = '$.inspections';
const PLAN = '$.chosen';

/**
 * The failover runbook, started by hand (`{}`, or with `candidate`,
 * `releaseReserve`, `dryRun`): reads Patroni's members and inspects every
 * backend (data volume, PostgreSQL, WAL position) without touching them, then
 * chooses a candidate that has every WAL position the cluster knows of
 * (refusing, with the reason, a primary that runs with room or a cluster with
 * no safe candidate). A dry run ends there. Otherwise it releases a full old
 * primary's space reserve, so it can shut down cleanly, asks Patroni to fail
 * over to the candidate, and waits (2 minutes) until the candidate leads.
 */
export function failoverDefinition(
  scope: Construct,
  props: FailoverDefinitionProps,
): sfn.IChainable {
  const { catchInto } = failureEnd(scope, 'Failover failed');
  const inventory = sfn.JsonPath.objectAt(StatePath.inventory);
  const step = (id: string, payload: Record<string, unknown>, resultPath: string) =>
    lambdaTask(scope, id, {
      lambdaFunction: props.failover,
      payload: { ...payload, inventory },
      resultSelector: { 'result.$': '$.Payload' },
      resultPath,
      retryOnServiceErrors: payload.action !== 'hand-over',
    });
  const pollInterval = props.pollInterval ?? Duration.seconds(5);

  const read = step(
    'Read the request and Patroni',
    { action: 'read', input: sfn.JsonPath.objectAt('$$.Execution.Input') },
    READ,
  );
  // One action of the failover document on each node of `itemsPath`.
  const onEach = (
    id: string,
    itemsPath: string,
    label: string,
    action: string,
    resultPath: string,
  ) => {
    const map = new sfn.Map(scope, id, {
      itemsPath,
      itemSelector: { 'node.$': '$$.Map.Item.Value' },
      resultPath,
    });
    const command = new NodeCommand(scope, label, {
      nodeCommand: props.nodeCommand,
      document: props.document,
      parameters: { Action: action },
      pollInterval,
    });
    return { map, command };
  };
  const inspect = onEach(
    'Inspect every backend',
    `${StatePath.inventory}.backend`,
    'Inspect',
    'inspect',
    INSPECTIONS,
  );
  inspect.map.itemProcessor(
    inspect.command.next(
      new sfn.Pass(scope, 'Inspection', {
        parameters: {
          'node.$': `${StatePath.node}.name`,
          'stdout.$': NodeCommand.STDOUT_TAIL,
        },
      }),
    ),
  );
  const plan = step(
    'Choose the candidate',
    {
      action: 'plan',
      request: sfn.JsonPath.objectAt(`${READ}.result.request`),
      cluster: sfn.JsonPath.objectAt(`${READ}.result.cluster`),
      inspections: sfn.JsonPath.objectAt(INSPECTIONS),
    },
    PLAN,
  );
  const release = onEach(
    'Release the space reserve',
    `${PLAN}.result.releaseReserveOn`,
    'Release',
    'release-reserve',
    sfn.JsonPath.DISCARD,
  );
  release.map.itemProcessor(release.command);
  const planned = { action: '', plan: sfn.JsonPath.objectAt(`${PLAN}.result`) };
  const handOver = step('Hand over', { ...planned, action: 'hand-over' }, '$.handedOver');
  const check = step('New primary leads?', { ...planned, action: 'check' }, '$.newPrimary');
  check.addRetry({
    errors: [ErrorName.FailoverPending],
    interval: Duration.seconds(5),
    maxAttempts: 24,
    backoffRate: 1,
  });

  return sfn.Chain.start(inventoryState(scope, props.inventory))
    .next(catchInto(read))
    .next(catchInto(inspect.map))
    .next(catchInto(plan))
    .next(
      new sfn.Choice(scope, 'Dry run?')
        .when(
          sfn.Condition.booleanEquals(`${PLAN}.result.dryRun`, true),
          new sfn.Succeed(scope, 'Planned only'),
        )
        .otherwise(
          sfn.Chain.start(
            catchInto(
              release.map,
              "the old primary's space reserve may be removed (the patroni document makes it again once there is room); Patroni was not asked to fail over",
            ),
          )
            .next(catchInto(handOver, 'Patroni may be failing over: see patronictl list'))
            .next(
              catchInto(
                check,
                'Patroni was asked to fail over to the candidate, which does not lead: see patronictl list and the Patroni log of both nodes',
              ),
            )
            .next(new sfn.Succeed(scope, 'Failed over')),
        ),
    );
}
