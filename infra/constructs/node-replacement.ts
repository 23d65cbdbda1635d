import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { ClusterInventory } from '../../functions/lib/inventory';
import { replacementDefinition } from '../workflows/replacement-definition';
import { acknowledge, arnOf } from './nag';
import { CLUSTER_TAG } from './node-group';
import { NodeDocuments } from './node-documents';
import { RunbookFunctions } from './runbook-functions';
import { metricRunbookFailures, runbookStateMachine } from './runbook-state-machine';
import { TaskFunction } from './task-function';

export interface NodeReplacementProps {
  readonly clusterName: string;
  readonly documents: NodeDocuments;
  readonly functions: RunbookFunctions;
  readonly inventory: ClusterInventory;
  /**
   * The longest a run may take: EC2's root volume swap, then the bootstrap
   * (a re-clone of a large database included).
   * @default 6 hours
   */
  readonly timeout?: Duration;
}

/**
 * The node replacement runbook, started by hand with `{"node": "<name>"}`:
 * the node's instance gets a fresh root volume from its launch state (same
 * instance, address and data volume: nothing drifts from the stack), and the
 * bootstrap rebuilds it. Refuses Patroni's leader, an unknown node and an etcd
 * member whose peers are not all healthy before anything is touched.
 */
export class NodeReplacement extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly replaceNode: TaskFunction;

  constructor(scope: Construct, id: string, props: NodeReplacementProps) {
    super(scope, id);
    this.replaceNode = new TaskFunction(this, 'ReplaceNode', {
      handlerFolder: 'replace-node',
      description: "pem-ha: checks a node replacement and swaps the instance's root volume",
    });
    const role = this.replaceNode.role;
    const ec2Arn = (resource: string) =>
      Stack.of(this).formatArn({ service: 'ec2', resource, resourceName: '*' });
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['ec2:CreateReplaceRootVolumeTask'],
        resources: [ec2Arn('instance')],
        conditions: { StringEquals: { [`aws:ResourceTag/${CLUSTER_TAG}`]: props.clusterName } },
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        // The task and the replaced root volume it deletes; the instance above must be the cluster's.
        actions: ['ec2:CreateReplaceRootVolumeTask'],
        resources: [ec2Arn('replace-root-volume-task'), ec2Arn('volume')],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['ec2:DescribeReplaceRootVolumeTasks'],
        resources: ['*'],
      }),
    );
    acknowledge(role, [
      ['Resource::*', 'ec2:DescribeReplaceRootVolumeTasks supports no resource-level permissions.'],
      [
        `Resource::${arnOf(this, 'ec2', 'instance/*')}`,
        `Only instances tagged ${CLUSTER_TAG}=${props.clusterName} (aws:ResourceTag condition).`,
      ],
      [
        `Resource::${arnOf(this, 'ec2', 'replace-root-volume-task/*')}`,
        'The task is created by the call itself; its id is not known before.',
      ],
      [
        `Resource::${arnOf(this, 'ec2', 'volume/*')}`,
        "The root volume being replaced: its id is not in the template (CloudFormation creates it with the instance); the call also needs the instance above, limited to the cluster's.",
      ],
    ]);

    const { documents } = props;
    const fns = props.functions;
    const timeout = props.timeout ?? Duration.hours(6);
    this.stateMachine = runbookStateMachine(this, 'StateMachine', {
      comment: `pem-ha ${props.clusterName}: replace one node's instance root (same id, address, volume), then bootstrap it back`,
      // A stable, readable name (operators start it by hand).
      stateMachineName: `${props.clusterName}-node-replacement`,
      lock: { lock: fns.lock, runbook: 'replacement' },
      definition: replacementDefinition(this, {
        inventory: props.inventory,
        documents: documents.bootstrapRuns(),
        etcdQuorum: documents.run('etcdQuorum'),
        nodeCommand: fns.nodeCommand.function,
        clusterCa: fns.clusterCa.function,
        signCertificates: fns.signCertificates.function,
        recordExpiry: fns.recordExpiry.function,
        clusterStatus: fns.clusterStatus.function,
        replaceNode: this.replaceNode.function,
      }),
      invoked: [
        fns.nodeCommand,
        fns.clusterCa,
        fns.signCertificates,
        fns.recordExpiry,
        fns.clusterStatus,
        this.replaceNode,
      ],
      timeout,
    });
  }

  /** Replacement executions that failed, timed out or were aborted. */
  metricFailures(props?: cloudwatch.MathExpressionOptions): cloudwatch.MathExpression {
    return metricRunbookFailures(this.stateMachine, 'failed node replacements', props);
  }

  /** Lets `grantee` start a replacement. */
  grantStartExecution(grantee: iam.IGrantable): iam.Grant {
    return this.stateMachine.grantStartExecution(grantee);
  }
}
