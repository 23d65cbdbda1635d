import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import {
  caExpiryState,
  confirmLeaderState,
  failureEnd,
  GATE_ITEM_FIELDS,
  gatedCertificateStates,
  planState,
  RollingCertificateProps,
} from './certificate-states';
import { inventoryState, StatePath } from './task-states';

export interface RotationDefinitionProps extends RollingCertificateProps {
  /** Used when the execution input has no `renewBeforeDays` (the schedule's runs). */
  readonly defaultRenewBeforeDays: number;
}

/**
 * Certificate rotation: check the cluster (one leader, every backend
 * running), then one node at a time (etcd members, replicas, the primary,
 * web hosts), each behind a health gate, renew what expires within the
 * threshold, verified on the node before and after the switch; finally the
 * same leader on the same timeline must be in charge. Input: `{}` or `{ "renewBeforeDays": N }`,
 * checked before this definition starts (functions/lib/runbook-inputs.ts).
 */
export function rotationDefinition(
  scope: Construct,
  props: RotationDefinitionProps,
): sfn.IChainable {
  const { catchInto } = failureEnd(scope, 'Rotation failed');
  const inventory = inventoryState(scope, props.inventory);
  const defaultThreshold = new sfn.Pass(scope, 'Default renewal threshold', {
    result: sfn.Result.fromObject({ renewBeforeDays: String(props.defaultRenewBeforeDays) }),
    resultPath: StatePath.settings,
  });
  const givenThreshold = new sfn.Pass(scope, 'Given renewal threshold', {
    parameters: { 'renewBeforeDays.$': "States.Format('{}', $.renewBeforeDays)" },
    resultPath: StatePath.settings,
  });

  const plan = catchInto(planState(scope, 'Plan rotation', props.clusterStatus));
  const eachNode = catchInto(
    new sfn.Map(scope, 'Rotate node by node', {
      itemsPath: `${StatePath.plan}.order`,
      itemSelector: {
        'node.$': '$$.Map.Item.Value',
        'renewBeforeDays.$': `${StatePath.settings}.renewBeforeDays`,
        ...GATE_ITEM_FIELDS,
      },
      maxConcurrency: 1,
      resultPath: sfn.JsonPath.DISCARD,
    }),
  );
  eachNode.itemProcessor(gatedCertificateStates(scope, 'Before the node', props));
  const confirm = catchInto(confirmLeaderState(scope, props.clusterStatus));
  plan
    .next(eachNode)
    .next(confirm)
    .next(catchInto(caExpiryState(scope, props.recordExpiry)))
    .next(new sfn.Succeed(scope, 'Certificates current'));
  defaultThreshold.next(plan);
  givenThreshold.next(plan);

  // The check-input state before this one refused any other field or value.
  return inventory.next(
    new sfn.Choice(scope, 'Renewal threshold given?')
      .when(sfn.Condition.isPresent('$.renewBeforeDays'), givenThreshold)
      .otherwise(defaultThreshold),
  );
}
