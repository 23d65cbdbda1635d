import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { lambdaTask } from '../workflows/task-states';
import { ValidationError } from './errors';
import { acknowledge, arnOf, logicalIdOf } from './nag';
import { TaskFunction } from './task-function';

export interface RunbookLockProps {
  /** Encrypts the lock table. */
  readonly encryptionKey: kms.IKey;
}

/** What a runbook's state machine needs to take the lock in its first state. */
export interface RunbookLockUse {
  readonly lock: RunbookLock;
  /** The runbook's name in the lock and in every refusal (`rotation`, `upgrade`, ...). */
  readonly runbook: string;
}

const RUNBOOK_NAME = /^[a-z][a-z-]{0,31}$/;

/**
 * One runbook at a time per cluster: a DynamoDB table holding one lock item,
 * a function that takes it (the first state of every guarded runbook) and
 * releases it when an EventBridge rule reports the holder's execution ended,
 * however it ended (success, failure, timeout, abort).
 */
export class RunbookLock extends Construct {
  readonly table: dynamodb.Table;
  readonly function: TaskFunction;
  private readonly runbooks = new Set<string>();
  private readonly readExecutions: iam.Policy;
  private releaseRule?: events.Rule;

  constructor(scope: Construct, id: string, props: RunbookLockProps) {
    super(scope, id);
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'lockId', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: props.encryptionKey,
      // A backstop only: the holder's own state machine timeout.
      timeToLiveAttribute: 'expiresAt',
      removalPolicy: RemovalPolicy.DESTROY,
    });
    Validations.of(this.table).acknowledge({
      id: 'AwsSolutions::AwsSolutions-DDB3',
      reason:
        'The table holds one short-lived lock item; a point-in-time copy of it has nothing to recover.',
    });
    this.function = new TaskFunction(this, 'Function', {
      handlerFolder: 'runbook-lock',
      description: "pem-ha: takes and releases the cluster's runbook lock",
      environment: { LOCK_TABLE: this.table.tableName },
    });
    this.table.grant(this.function, 'dynamodb:PutItem', 'dynamodb:DeleteItem');
    // Its own policy, not the role's default one: the function depends on that,
    // and this one names the state machines, which depend on the function.
    this.readExecutions = new iam.Policy(this, 'ReadExecutions', { roles: [this.function.role] });
  }

  /**
   * The state that takes the lock for `runbook`, held at most `holdFor` (the
   * state machine's timeout). Call {@link guard} with the state machine built
   * from it.
   */
  acquireState(scope: Construct, runbook: string, holdFor: Duration): sfn.TaskStateBase {
    if (!RUNBOOK_NAME.test(runbook)) {
      throw new ValidationError(
        this,
        `runbook must be lowercase letters and dashes, 1 to 32 of them; got ${JSON.stringify(runbook)}`,
      );
    }
    if (this.runbooks.has(runbook)) {
      throw new ValidationError(this, `runbook ${runbook} already takes this lock`);
    }
    this.runbooks.add(runbook);
    // A retried acquire from the same execution succeeds; a second runbook is refused at once.
    return lambdaTask(scope, 'Take the runbook lock', {
      lambdaFunction: this.function.function,
      payload: {
        action: 'acquire',
        runbook,
        execution: sfn.JsonPath.stringAt('$$.Execution.Id'),
        holdSeconds: holdFor.toSeconds(),
      },
      resultPath: sfn.JsonPath.DISCARD,
    });
  }

  /**
   * Lets the lock ask whether `stateMachine`'s executions still run, and
   * releases the lock when one of them ends, however it ended.
   */
  guard(stateMachine: sfn.StateMachine): void {
    this.readExecutions.addStatements(
      new iam.PolicyStatement({
        actions: ['states:DescribeExecution'],
        resources: [executionsOf(stateMachine)],
      }),
    );
    acknowledge(this.readExecutions, [
      [
        `Resource::${arnOf(this, 'states', `execution:<${logicalIdOf(stateMachine)}.Name>:*`)}`,
        'Executions of one guarded runbook: their names are not known before they start.',
      ],
    ]);
    this.releaseRule ??= this.newReleaseRule();
    // Merged into the pattern: one rule for every guarded state machine.
    this.releaseRule.addEventPattern({
      detail: { stateMachineArn: [stateMachine.stateMachineArn] },
    });
  }

  /** The rule reporting the end of an execution to the function, which releases its lock. */
  private newReleaseRule(): events.Rule {
    const rule = new events.Rule(this, 'ReleaseOnEnd', {
      description: 'pem-ha: releases the runbook lock when the execution holding it ends',
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: { status: ['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'] },
      },
    });
    rule.addTarget(
      new targets.LambdaFunction(this.function.function, {
        event: events.RuleTargetInput.fromObject({
          action: 'release',
          execution: events.EventField.fromPath('$.detail.executionArn'),
        }),
        retryAttempts: 10,
        maxEventAge: Duration.hours(1),
      }),
    );
    return rule;
  }
}

/** `arn:...:execution:<state machine name>:*`: the executions of one state machine. */
function executionsOf(machine: sfn.StateMachine): string {
  return Stack.of(machine).formatArn({
    service: 'states',
    resource: 'execution',
    resourceName: `${machine.stateMachineName}:*`,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}
