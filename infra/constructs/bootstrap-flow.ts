import { CustomResource, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct, IDependable } from 'constructs';
import type { ClusterInventory } from '../../functions/lib/inventory';
import { bootstrapDefinition } from '../workflows/bootstrap-definition';
import { ValidationError } from './errors';
import { NodeDocuments } from './node-documents';
import {
  acknowledge,
  acknowledgeProvider,
  arnOf,
  Finding,
  functionVersions,
  logicalIdOf,
  providerWaitedFunctions,
} from './nag';
import { RunbookFunctions } from './runbook-functions';
import { runbookStateMachine } from './runbook-state-machine';
import { TaskFunction } from './task-function';

/** How long a deploy waits for the bootstrap: the most the Provider framework allows. */
const BOOTSTRAP_DEPLOY_WAIT = Duration.hours(2);
/** The bootstrap's own bound, inside the deploy's wait. */
const BOOTSTRAP_TIMEOUT = Duration.minutes(110);

export interface BootstrapFlowProps {
  readonly clusterName: string;
  readonly documents: NodeDocuments;
  readonly functions: RunbookFunctions;
  readonly inventory: ClusterInventory;
  /** Resources the first run needs in place (instances, volume attachments, secrets). */
  readonly dependsOn?: readonly IDependable[];
  /** @default true: run on every deploy that changes the documents or the nodes */
  readonly runOnDeploy?: boolean;
}

/** The nag finding's resource for `grantRead`'s DescribeExecution on a state machine's executions. */
function executionsOf(stateMachine: sfn.StateMachine): string {
  const name = `{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${logicalIdOf(stateMachine)}"}]}]}`;
  return `Resource::${arnOf(stateMachine, 'states', `execution:${name}:*`)}`;
}

/** A runbook a deploy runs after the bootstrap (see {@link BootstrapFlow.runAfterBootstrap}). */
export interface AfterBootstrapRun {
  readonly stateMachine: sfn.StateMachine;
  /** The execution's input. */
  readonly input: Record<string, unknown>;
  /** A deploy that changes it runs the runbook again. */
  readonly revision: string;
  readonly resourceType: string;
  /** @default false: the first deploy runs it too */
  readonly skipCreate?: boolean;
}

/**
 * The bootstrap runbook as a Step Functions state machine whose tasks send
 * the node documents through SSM, and a custom resource that runs it on
 * deploy and fails the deploy with the runbook's error when it fails.
 */
export class BootstrapFlow extends Construct {
  readonly stateMachine: sfn.StateMachine;
  private onDeploy?: {
    readonly provider: cr.Provider;
    readonly onEvent: TaskFunction;
    readonly isComplete: TaskFunction;
    readonly run: CustomResource;
  };

  constructor(scope: Construct, id: string, props: BootstrapFlowProps) {
    super(scope, id);
    const { documents } = props;
    if (props.inventory.backend.length < 1 || props.inventory.etcd.length < 1) {
      throw new ValidationError(
        this,
        'inventory must name at least one etcd and one backend node; got none',
      );
    }
    const { nodeCommand, clusterCa, signCertificates, recordExpiry } = props.functions;

    this.stateMachine = runbookStateMachine(this, 'StateMachine', {
      comment: `pem-ha ${props.clusterName}: bootstrap every node (idempotent; start it again any time)`,
      lock: { lock: props.functions.lock, runbook: 'bootstrap' },
      input: { check: props.functions.checkInput, runbook: 'bootstrap' },
      definition: bootstrapDefinition(this, {
        inventory: props.inventory,
        documents: documents.bootstrapRuns(),
        nodeCommand: nodeCommand.function,
        clusterCa: clusterCa.function,
        signCertificates: signCertificates.function,
        recordExpiry: recordExpiry.function,
      }),
      invoked: [nodeCommand, clusterCa, signCertificates, recordExpiry],
      // Within the deploy's wait (BOOTSTRAP_DEPLOY_WAIT): a deploy that gave up while
      // the run went on would roll back beside it.
      timeout: BOOTSTRAP_TIMEOUT,
      // Its own id: the log group predates the shared factory and is kept.
      logGroup: new logs.LogGroup(this, 'LogGroup', { retention: logs.RetentionDays.ONE_YEAR }),
    });
    if (props.runOnDeploy ?? true) this.runOnDeploy(props);
  }

  /** Lets `grantee` start the runbook by hand. */
  grantStartExecution(grantee: iam.IGrantable): iam.Grant {
    return this.stateMachine.grantStartExecution(grantee);
  }

  /**
   * Runs another runbook on deploy, right after the bootstrap, with the same
   * custom resource handlers: the deploy waits for it and fails with its error.
   */
  runAfterBootstrap(id: string, run: AfterBootstrapRun): CustomResource {
    if (!this.onDeploy) {
      throw new ValidationError(
        this,
        `${id}: the bootstrap does not run on deploy (runOnDeploy false)`,
      );
    }
    const { provider, onEvent, isComplete } = this.onDeploy;
    run.stateMachine.grantStartExecution(onEvent);
    run.stateMachine.grantRead(isComplete);
    const resource = new CustomResource(this, id, {
      serviceToken: provider.serviceToken,
      resourceType: run.resourceType,
      properties: {
        StateMachineArn: run.stateMachine.stateMachineArn,
        Input: JSON.stringify(run.input),
        Revision: run.revision,
        SkipCreate: String(run.skipCreate ?? false),
        PhysicalId: `pem-ha-${id.toLowerCase()}`,
      },
    });
    resource.node.addDependency(this.onDeploy.run);
    acknowledge(isComplete.role, [
      [
        executionsOf(run.stateMachine),
        `Executions of the runbook ${id} starts on deploy (execution names are not known before).`,
      ],
    ]);
    return resource;
  }

  private runOnDeploy(props: BootstrapFlowProps): void {
    const onEvent = new TaskFunction(this, 'DeployTrigger', {
      handlerFolder: 'bootstrap-trigger',
      handler: 'onEvent',
      description: 'pem-ha: starts the bootstrap runbook on deploy',
    });
    const isComplete = new TaskFunction(this, 'DeployWait', {
      handlerFolder: 'bootstrap-trigger',
      handler: 'isComplete',
      description: 'pem-ha: reports the bootstrap runbook to CloudFormation',
    });
    this.stateMachine.grantStartExecution(onEvent);
    this.stateMachine.grantRead(isComplete);
    const provider = new cr.Provider(this, 'Provider', {
      onEventHandler: onEvent.function,
      isCompleteHandler: isComplete.function,
      queryInterval: Duration.seconds(30),
      totalTimeout: BOOTSTRAP_DEPLOY_WAIT,
      disableWaiterStateMachineLogging: false,
      waiterStateMachineLogOptions: {
        destination: new logs.LogGroup(this, 'WaiterLogGroup', {
          retention: logs.RetentionDays.ONE_YEAR,
        }),
        level: sfn.LogLevel.ALL,
        includeExecutionData: false,
      },
      logGroup: new logs.LogGroup(this, 'ProviderLogGroup', {
        retention: logs.RetentionDays.ONE_YEAR,
      }),
    });
    const resource = new CustomResource(this, 'Run', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::PemHaBootstrap',
      properties: {
        StateMachineArn: this.stateMachine.stateMachineArn,
        // A change to any document or node runs the flow again on deploy.
        Revision: props.documents.contentHash,
        Nodes: Stack.of(this).toJsonString(props.inventory),
      },
    });
    for (const dependency of props.dependsOn ?? []) resource.node.addDependency(dependency);
    this.onDeploy = { provider, onEvent, isComplete, run: resource };
    acknowledge(isComplete.role, [
      [
        'Resource::*',
        'states:DescribeExecution of the runbook executions this custom resource starts; their names are unknown before StartExecution.',
      ],
      [
        executionsOf(this.stateMachine),
        'Executions of this runbook only (the state machine name is fixed; execution names are not).',
      ],
    ]);
    acknowledgeProvider(provider, [onEvent, isComplete]);
    // The waiter state machine (asynchronous providers only), acknowledged on
    // the provider: its ids inside the provider are the framework's business.
    acknowledge(provider, [
      ...providerWaitedFunctions(provider).map((fn): Finding => [
        functionVersions(fn),
        "The Provider framework's waiter state machine may invoke any version of the framework's own functions.",
      ]),
      [
        'Resource::*',
        'CloudWatch Logs delivery actions (CreateLogDelivery, DescribeResourcePolicies, ...) take no resource ARN.',
      ],
    ]);
    Validations.of(provider).acknowledge({
      id: 'AwsSolutions::AwsSolutions-SF2',
      reason:
        "The CDK Provider framework's waiter state machine offers no tracing option; it only loops over isComplete, and the runbook it waits for is traced.",
    });
  }
}
