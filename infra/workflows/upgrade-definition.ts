import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import type { BootstrapInventory } from './bootstrap-definition';
import { GATE_RETRY } from './certificate-states';
import { DocumentRun, nodeCommandStates, TASK_TIMEOUT } from './node-command-states';

export interface UpgradeDefinitionProps {
  readonly inventory: BootstrapInventory;
  /** The upgrade node document. */
  readonly document: DocumentRun;
  readonly nodeCommand: lambda.IFunction;
  /** The upgrade's own task function (preflight, plan, waits, switchover, halt). */
  readonly upgradeSteps: lambda.IFunction;
  /** Between polls of a node command. @default 10 seconds */
  readonly pollInterval?: Duration;
  /** Between looks at Patroni and the NLB. @default 5 seconds */
  readonly lookInterval?: Duration;
}

/** Errors after which nothing was touched: the run ends without the halt's checks. */
const NOTHING_TOUCHED = ['InvalidInput'];

/**
 * The rolling upgrade: preflight and each node's own check, the plan (a dry
 * run ends there), drain tags an earlier halted run left cleared, then one
 * node at a time, each behind a health gate: etcd members, replicas least
 * caught-up first (out of the read endpoint while they change), the primary
 * through a single switchover, web hosts. Any failure goes to the halt,
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
    new tasks.LambdaInvoke(scope, id, {
      lambdaFunction: props.upgradeSteps,
      payload: sfn.TaskInput.fromObject(payload),
      resultSelector: selector,
      resultPath,
      taskTimeout: sfn.Timeout.duration(TASK_TIMEOUT),
    });
  const inventory = sfn.JsonPath.objectAt('$.inventory');
  const node = sfn.JsonPath.objectAt('$.node');

  // The halt: make safe, clear the drain tags this run set, report, then fail
  // with the error that stopped the run.
  const halted = new sfn.Fail(scope, 'Halted', {
    errorPath: '$.failure.Error',
    causePath: '$.failure.Cause',
  });
  const report = new sfn.Pass(scope, 'Halt report', {
    parameters: {
      'Error.$': '$.failure.Error',
      'Cause.$': "States.Format('{} [halt: {}]', $.failure.Cause, $.haltReport.result.summary)",
    },
    resultPath: '$.failure',
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
    state.addCatch(halted, { errors: NOTHING_TOUCHED, resultPath: '$.failure' });
    state.addCatch(haltSafely, { resultPath: '$.failure' });
    return state;
  };

  const command = (label: string, action: string, parameters: Record<string, string> = {}) =>
    nodeCommandStates(scope, label, {
      nodeCommand: props.nodeCommand,
      document: props.document,
      parameters: {
        Action: action,
        Component: sfn.JsonPath.stringAt('$.settings.component'),
        Version: sfn.JsonPath.stringAt('$.settings.version'),
        Tier: sfn.JsonPath.stringAt('$.node.tier'),
        MemberName: sfn.JsonPath.stringAt('$.node.name'),
        MemberAddress: sfn.JsonPath.stringAt('$.node.address'),
        ...parameters,
      },
      pollInterval: props.pollInterval,
    });
  // A Wait/Choice loop over one look; the function sets the deadline on the first.
  const until = (label: string, payload: Record<string, unknown>) => {
    const start = new sfn.Pass(scope, `${label}: start`, {
      result: sfn.Result.fromObject({ ready: false, deadline: 0 }),
      resultPath: '$.look',
    });
    const lookAgain = step(
      `${label}: look`,
      { ...payload, deadline: sfn.JsonPath.numberAt('$.look.deadline') },
      '$.look',
      {
        'ready.$': '$.Payload.ready',
        'deadline.$': '$.Payload.deadline',
        'detail.$': '$.Payload.detail',
      },
    );
    const done = new sfn.Pass(scope, `${label}: done`);
    const wait = new sfn.Wait(scope, `${label}: wait`, {
      time: sfn.WaitTime.duration(props.lookInterval ?? Duration.seconds(5)),
    });
    start.next(lookAgain);
    lookAgain.next(
      new sfn.Choice(scope, `${label}: ready?`)
        .when(sfn.Condition.booleanEquals('$.look.ready', true), done)
        .otherwise(wait),
    );
    wait.next(lookAgain);
    return { start, end: done };
  };
  const chain = (...parts: { start: sfn.State; end: sfn.INextable }[]) => {
    parts.slice(1).forEach((part, i) => parts[i].end.next(part.start));
    return parts[0].start;
  };
  const memberBack = (label: string) =>
    until(label, {
      action: 'awaitMember',
      inventory,
      node,
      maxLagBytes: sfn.JsonPath.numberAt('$.settings.maxLagBytes'),
    });
  const mapOver = (id: string, itemsPath: string, settings: string) =>
    new sfn.Map(scope, id, {
      itemsPath,
      itemSelector: {
        'node.$': '$$.Map.Item.Value',
        'settings.$': settings,
        'inventory.$': '$.inventory',
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
  const gate = (label: string) => {
    const look = step(
      `${label}: cluster healthy?`,
      { action: 'gate', inventory, maxLagBytes: sfn.JsonPath.numberAt('$.settings.maxLagBytes') },
      sfn.JsonPath.DISCARD,
    );
    look.addRetry({ errors: ['ClusterUnhealthyError'], ...GATE_RETRY, backoffRate: 1 });
    return { start: look, end: look };
  };
  // Drain tags a halted run could not take back: cleared without waiting for reads.
  const clearDrain = (label: string) =>
    command(label, 'clear-drain', { Component: 'postgresql', Version: 'latest' });
  const haltClear = mapOver('Halt: clear drain tags', '$.halt.result.drained', '$.halt.result');
  haltClear.itemProcessor(clearDrain('Halt: clear drain tags on the node').start);
  haltClear.addCatch(haltSummary, { resultPath: '$.haltClearError' });
  haltClear.next(haltSummary);
  haltSafely.next(haltClear);

  const etcdMember = chain(
    gate('etcd member'),
    command('etcd member: install', 'install'),
    command('etcd member: restart', 'restart'),
    command('etcd member: verify', 'verify'),
  );
  const replica = chain(
    gate('Replica'),
    command('Replica: drain', 'drain'),
    until('Replica: read endpoint drained', { action: 'awaitReadTarget', node, want: 'drained' }),
    command('Replica: install', 'install'),
    command('Replica: restart', 'restart'),
    memberBack('Replica: caught up'),
    command('Replica: verify', 'verify'),
    command('Replica: undrain', 'undrain'),
    until('Replica: read endpoint healthy', { action: 'awaitReadTarget', node, want: 'healthy' }),
  );
  const switchover = step(
    'Primary: switch over',
    {
      action: 'switchover',
      inventory,
      leader: sfn.JsonPath.stringAt('$.node.name'),
      maxLagBytes: sfn.JsonPath.numberAt('$.settings.maxLagBytes'),
    },
    '$.switchover',
  );
  const primary = chain(
    gate('Primary'),
    command('Primary: install', 'install'),
    { start: switchover, end: switchover },
    until('Primary: new leader serving', {
      action: 'awaitLeader',
      inventory,
      candidate: sfn.JsonPath.stringAt('$.switchover.result.candidate'),
      oldLeader: sfn.JsonPath.stringAt('$.node.name'),
    }),
    command('Primary: restart', 'restart'),
    memberBack('Primary: caught up'),
    command('Primary: verify', 'verify'),
  );
  const webHost = chain(
    gate('Web host'),
    command('Web host: install', 'install'),
    command('Web host: verify', 'verify'),
  );

  const checkNode = command('Check node', 'check', {
    Component: sfn.JsonPath.stringAt('$.request.component'),
    Version: sfn.JsonPath.stringAt('$.request.version'),
  });
  checkNode.end.next(
    new sfn.Pass(scope, 'Check node: result', {
      parameters: { 'name.$': '$.node.name', 'stdout.$': '$.run.poll.outcome.stdoutTail' },
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
  checks.itemProcessor(checkNode.start);

  const preflight = catchInto(
    step(
      'Preflight',
      {
        action: 'preflight',
        input: sfn.JsonPath.objectAt('$$.Execution.Input'),
        execution: {
          id: sfn.JsonPath.stringAt('$$.Execution.Id'),
          stateMachine: sfn.JsonPath.stringAt('$$.StateMachine.Id'),
        },
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
    clearDrain('Leftover drain tags: clear').start,
  );
  const upgrade = leftover.next(
    onEach('Upgrade etcd members one by one', '$.plan.result.etcd', etcdMember),
  );
  upgrade
    .next(onEach('Upgrade replicas one by one', '$.plan.result.replicas', replica))
    .next(onEach('Upgrade the primary', '$.plan.result.primary', primary))
    .next(onEach('Upgrade web hosts one by one', '$.plan.result.web', webHost))
    .next(confirm)
    .next(new sfn.Succeed(scope, 'Upgraded', { outputPath: '$.plan.result' }));

  return new sfn.Pass(scope, 'Inventory', {
    result: sfn.Result.fromObject(props.inventory),
    resultPath: '$.inventory',
  })
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
