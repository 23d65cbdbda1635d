import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { ClusterInventory } from '../../functions/lib/inventory';
import { failoverDefinition } from '../workflows/failover-definition';
import { ClusterPki } from './cluster-pki';
import { literalNameOf } from './named-secret';
import { acknowledge } from './nag';
import { NodeDocuments } from './node-documents';
import { RunbookFunctions } from './runbook-functions';
import { metricRunbookFailures, runbookStateMachine } from './runbook-state-machine';
import { TaskFunction } from './task-function';

export interface PrimaryFailoverProps {
  readonly clusterName: string;
  readonly documents: NodeDocuments;
  readonly functions: RunbookFunctions;
  readonly pki: ClusterPki;
  readonly inventory: ClusterInventory;
  /** Patroni's REST API credentials (POST /failover), which the failover function may read. */
  readonly restApiSecret: secretsmanager.ISecret;
  /** Where the failover function runs (it talks to Patroni on the backends). */
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
}

/**
 * The failover runbook, started by hand when the primary's PostgreSQL cannot
 * run (its data volume full, or it does not start): moves the primary to the
 * member that has every WAL position the cluster knows of, or refuses with
 * the reason. Its task function reads and asks Patroni; the node steps go
 * through the shared node-command function.
 */
export class PrimaryFailover extends Construct implements ec2.IConnectable {
  readonly stateMachine: sfn.StateMachine;
  /** The failover's task function, in the VPC: admit it to Patroni's REST port. */
  readonly failoverSteps: TaskFunction;

  constructor(scope: Construct, id: string, props: PrimaryFailoverProps) {
    super(scope, id);
    this.failoverSteps = new TaskFunction(this, 'FailoverSteps', {
      handlerFolder: 'failover',
      description: 'pem-ha: failover runbook request, plan, hand-over and check',
      environment: {
        TRUST_SECRET: props.pki.trustSecretName,
        REST_API_SECRET: literalNameOf(this, 'restApiSecret', props.restApiSecret),
      },
      vpc: { vpc: props.vpc, subnets: props.subnets },
    });
    props.pki.grantReadTrust(this.failoverSteps);
    props.restApiSecret.grantRead(this.failoverSteps);
    acknowledge(this.failoverSteps.role, [
      ['Resource::*', 'The VPC network interfaces of a function in the VPC take no resource ARN.'],
    ]);

    const fns = props.functions;
    this.stateMachine = runbookStateMachine(this, 'StateMachine', {
      comment: `pem-ha ${props.clusterName}: move the primary off a node whose PostgreSQL cannot run, to a member with every known WAL`,
      // A stable, readable name (operators start it by hand, at a bad moment).
      stateMachineName: `${props.clusterName}-failover`,
      lock: { lock: fns.lock, runbook: 'failover' },
      definition: failoverDefinition(this, {
        inventory: props.inventory,
        document: props.documents.run('failover'),
        nodeCommand: fns.nodeCommand.function,
        failover: this.failoverSteps.function,
      }),
      invoked: [fns.nodeCommand, this.failoverSteps],
      timeout: Duration.minutes(30),
    });
  }

  get connections(): ec2.Connections {
    return this.failoverSteps.connections;
  }

  /** Lets `grantee` start a failover. */
  grantStartExecution(grantee: iam.IGrantable): iam.Grant {
    return this.stateMachine.grantStartExecution(grantee);
  }

  /** Failover executions that failed, timed out or were aborted (refusals included). */
  metricFailures(props?: cloudwatch.MathExpressionOptions): cloudwatch.MathExpression {
    return metricRunbookFailures(this.stateMachine, 'failed failovers', props);
  }
}
