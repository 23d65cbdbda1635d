import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ErrorName } from '../../functions/lib/errors';
import type { ClusterInventory } from '../../functions/lib/inventory';
import { DocumentRun, NodeCommand } from './node-command';
import { LookUntilReady } from './look-until-ready';
import { PemDocuments, pemUpgradeChains } from './pem-upgrade-states';
import { gateState, inventoryState, lambdaTask, nodeField, StatePath } from './task-states';

export interface UpgradeDefinitionProps {
  readonly inventory: ClusterInventory;
  /** The upgrade node document. */
  readonly document: DocumentRun;
  readonly nodeCommand: lambda.IFunction;
  /** The upgrade's own task function (preflight, plan, waits, switchover, halt). */
  readonly upgradeSteps: lambda.IFunction;
  /** Between polls of a node command. @default 10 seconds */
  readonly pollInterval?: Duration;
  /** Between looks at Patroni and the NLB. @default 5 seconds */
  readonly lookInterval?: Duration;
  /** PEM's documents, which the pem component re-runs after the packages. @default - no pem component */
  readonly pem?: PemDocuments;
}

/** Errors after which nothing was touched: the run ends without the halt's checks. */
const NOTHING_TOUCHED = [ErrorName.InvalidInput];

/**
 * The rolling upgrade: preflight and each node's own check, the plan (a dry
 * run ends there), drain tags an earlier halted run left cleared, then one
 * node at a time, each behind a health gate: etcd members, replicas least
 * caught-up first (out of the read endpoint while they change), the primary
 * through a single switchover, web hosts (pem: PEM on the backends, the
 * primary first, then each web host out of the ALB). Any failure goes to the halt,
 * which touches no further node, cancels anything Patroni has scheduled,
 * clears the drain tags it can, and reports whether one healthy primary
 * serves writes and what is left drained.
 */
export function upgradeDefinition(scope: Construct, props: UpgradeDefinitionProps): sfn.IChainable {
  const step = (
    id: string,
    payload: Record<string, unknown>,
    resultPath: string,
    selector: Record<string, string> = { 'result.$': '$.Payload' },
  ) =>
    lambdaTask(scope, id, {
      lambdaFunction: props.upgradeSteps,
      payload,
      resultSelector: selector,
      resultPath,
      retryOnServiceErrors: payload.action !== 'switchover',
    });
  const inventory = sfn.JsonPath.objectAt(StatePath.inventory);
  const node = sfn.JsonPath.objectAt(StatePath.node);
  const maxLagBytes = sfn.JsonPath.numberAt(`${StatePath.settings}.maxLagBytes`);

  // The halt: make safe, clear the drain tags this run set, report, then fail
  // with the error that stopped the run.
  const halted = new sfn.Fail(scope, 'Halted', {
    errorPath: `${StatePath.failure}.Error`,
    causePath: `${StatePath.failure}.Cause`,
  });
  const report = new sfn.Pass(scope, 'Halt report', {
    parameters: {
      'Error.$': '$.failure.Error',
      'Cause.$': "States.Format('{} [halt: {}]', $.failure.Cause, $.haltReport.result.summary)",
    },
    resultPath: StatePath.failure,
  }).next(halted);
  const haltSafely = step('Halt safely', { action: 'halt', inventory }, '$.halt');
  haltSafely.addCatch(halted, { resultPath: '$.haltError' });
  const haltSummary = step(
    'Halt: what is left',
    { action: 'haltReport', inventory, halt: sfn.JsonPath.objectAt('$.halt.result') },
    '$.haltReport',
  );
  haltSummary.addCatch(halted, { resultPath: '$.haltError' });
  haltSummary.next(report);
  const catchInto = <T extends sfn.TaskStateBase | sfn.Map>(state: T): T => {
    state.addCatch(halted, { errors: NOTHING_TOUCHED, resultPath: StatePath.failure });
    state.addCatch(haltSafely, { resultPath: StatePath.failure });
    return state;
  };

  const command = (label: string, action: string, parameters: Record<string, string> = {}) =>
    new NodeCommand(scope, label, {
      nodeCommand: props.nodeCommand,
      document: props.document,
      parameters: {
        Action: action,
        Component: sfn.JsonPath.stringAt(`${StatePath.settings}.component`),
        Version: sfn.JsonPath.stringAt(`${StatePath.settings}.version`),
        Tier: sfn.JsonPath.stringAt(nodeField('tier')),
        MemberName: sfn.JsonPath.stringAt(nodeField('name')),
        MemberAddress: sfn.JsonPath.stringAt(nodeField('address')),
        ...parameters,
      },
      pollInterval: props.pollInterval,
    });
  const until = (label: string, payload: Record<string, unknown>) =>
    new LookUntilReady(scope, label, {
      lambdaFunction: props.upgradeSteps,
      payload,
      interval: props.lookInterval,
    });
  const memberBack = (label: string) =>
    until(label, {
      action: 'awaitMember',
      inventory,
      node,
      maxLagBytes,
    });
  const mapOver = (id: string, itemsPath: string, settings: string) =>
    new sfn.Map(scope, id, {
      itemsPath,
      itemSelector: {
        'node.$': '$$.Map.Item.Value',
        'settings.$': settings,
        'inventory.$': StatePath.inventory,
      },
      maxConcurrency: 1,
      resultPath: sfn.JsonPath.DISCARD,
    });
  const onEach = (id: string, itemsPath: string, processor: sfn.IChainable) => {
    const map = catchInto(mapOver(id, itemsPath, '$.plan.result.settings'));
    map.itemProcessor(processor);
    return map;
  };
  // Before each node: one leader, every other backend answering, running and
  // caught up (the node done last among them); about a minute, then the halt.
  const gate = (label: string) => gateState(scope, label, props.upgradeSteps, { maxLagBytes });
  // Drain tags a halted run could not take back: cleared without waiting for reads.
  const clearDrain = (label: string) =>
    command(label, 'clear-drain', { Component: 'postgresql', Version: 'latest' });
  const haltClear = mapOver('Halt: clear drain tags', '$.halt.result.drained', '$.halt.result');
  haltClear.itemProcessor(clearDrain('Halt: clear drain tags on the node'));
  haltClear.addCatch(haltSummary, { resultPath: '$.haltClearError' });
  haltClear.next(haltSummary);
  haltSafely.next(haltClear);

  const etcdMember = sfn.Chain.start(gate('etcd member'))
    .next(command('etcd member: install', 'install'))
    .next(command('etcd member: restart', 'restart'))
    .next(command('etcd member: verify', 'verify'));
  const replica = sfn.Chain.start(gate('Replica'))
    .next(command('Replica: drain', 'drain'))
    .next(
      until('Replica: read endpoint drained', { action: 'awaitReadTarget', node, want: 'drained' }),
    )
    .next(command('Replica: install', 'install'))
    .next(command('Replica: restart', 'restart'))
    .next(memberBack('Replica: caught up'))
    .next(command('Replica: verify', 'verify'))
    .next(command('Replica: undrain', 'undrain'))
    .next(
      until('Replica: read endpoint healthy', { action: 'awaitReadTarget', node, want: 'healthy' }),
    );
  const primary = sfn.Chain.start(gate('Primary'))
    .next(command('Primary: install', 'install'))
    .next(
      step(
        'Primary: switch over',
        {
          action: 'switchover',
          inventory,
          leader: sfn.JsonPath.stringAt(nodeField('name')),
          maxLagBytes,
        },
        '$.switchover',
      ),
    )
    .next(
      until('Primary: new leader serving', {
        action: 'awaitLeader',
        inventory,
        candidate: sfn.JsonPath.stringAt('$.switchover.result.candidate'),
        oldLeader: sfn.JsonPath.stringAt(nodeField('name')),
      }),
    )
    .next(command('Primary: restart', 'restart'))
    .next(memberBack('Primary: caught up'))
    .next(command('Primary: verify', 'verify'));
  const webHost = sfn.Chain.start(gate('Web host'))
    .next(command('Web host: install', 'install'))
    .next(command('Web host: verify', 'verify'));

  const checkNode = command('Check node', 'check', {
    Component: sfn.JsonPath.stringAt('$.request.component'),
    Version: sfn.JsonPath.stringAt('$.request.version'),
  });
  checkNode.next(
    new sfn.Pass(scope, 'Check node: result', {
      parameters: { 'name.$': nodeField('name'), 'stdout.$': NodeCommand.STDOUT_TAIL },
    }),
  );
  const checks = catchInto(
    new sfn.Map(scope, 'Check every node', {
      itemsPath: '$.preflight.result.checkNodes',
      itemSelector: { 'node.$': '$$.Map.Item.Value', 'request.$': '$.preflight.result.request' },
      maxConcurrency: 10,
      resultPath: '$.checks',
    }),
  );
  checks.itemProcessor(checkNode);

  const preflight = catchInto(
    step(
      'Preflight',
      {
        action: 'preflight',
        input: sfn.JsonPath.objectAt('$$.Execution.Input'),
        inventory,
      },
      '$.preflight',
    ),
  );
  const plan = catchInto(
    step(
      'Plan',
      {
        action: 'plan',
        inventory,
        preflight: sfn.JsonPath.objectAt('$.preflight.result'),
        checks: sfn.JsonPath.objectAt('$.checks'),
      },
      '$.plan',
    ),
  );
  const confirm = catchInto(
    step('Confirm upgrade', { action: 'confirm', inventory }, '$.confirmed'),
  );
  const leftover = onEach(
    'Clear drain tags left by an earlier run',
    '$.preflight.result.drained',
    clearDrain('Leftover drain tags: clear'),
  );
  const upgrade = leftover.next(
    onEach('Upgrade etcd members one by one', '$.plan.result.etcd', etcdMember),
  );
  const packages = onEach('Upgrade replicas one by one', '$.plan.result.replicas', replica);
  packages
    .next(onEach('Upgrade the primary', '$.plan.result.primary', primary))
    .next(onEach('Upgrade web hosts one by one', '$.plan.result.web', webHost))
    .next(confirm)
    .next(new sfn.Succeed(scope, 'Upgraded', { outputPath: '$.plan.result' }));
  if (props.pem) {
    const pem = pemUpgradeChains(scope, {
      documents: props.pem,
      nodeCommand: props.nodeCommand,
      pollInterval: props.pollInterval,
      gate,
      command,
      step: (label, payload) => step(label, payload, sfn.JsonPath.DISCARD),
      until,
    });
    const pemChain = onEach(
      'Upgrade PEM on the backends, the primary first',
      '$.plan.result.pemBackends',
      pem.backend,
    );
    pemChain
      .next(onEach('Upgrade PEM on the web hosts one by one', '$.plan.result.web', pem.webHost))
      .next(confirm);
    upgrade.next(
      new sfn.Choice(scope, 'PEM?')
        .when(sfn.Condition.stringEquals('$.plan.result.settings.component', 'pem'), pemChain)
        .otherwise(packages),
    );
  } else {
    upgrade.next(packages);
  }

  return inventoryState(scope, props.inventory)
    .next(preflight)
    .next(checks)
    .next(plan)
    .next(
      new sfn.Choice(scope, 'Dry run?')
        .when(
          sfn.Condition.booleanEquals('$.preflight.result.request.dryRun', true),
          new sfn.Succeed(scope, 'Planned (dry run)', { outputPath: '$.plan.result' }),
        )
        .otherwise(leftover),
    );
}
