import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { ClusterInventory } from '../../functions/lib/inventory';
import { upgradeDefinition } from '../workflows/upgrade-definition';
import { ClusterPki } from './cluster-pki';
import { ValidationError } from './errors';
import { literalNameOf } from './named-secret';
import { acknowledge } from './nag';
import { NodeDocuments } from './node-documents';
import { RunbookFunctions } from './runbook-functions';
import { runbookStateMachine } from './runbook-state-machine';
import { TaskFunction } from './task-function';

export interface RollingUpgradeProps {
  readonly clusterName: string;
  readonly documents: NodeDocuments;
  readonly functions: RunbookFunctions;
  readonly pki: ClusterPki;
  readonly inventory: ClusterInventory;
  /**
   * Patroni's REST API credentials (switchover, restart), which the upgrade
   * function is granted to read. Its name must be known at synth time (a
   * NamedSecret, or a secret imported by name): the function is given it.
   */
  readonly restApiSecret: secretsmanager.ISecret;
  /** The NLB's write (GET /primary) and read (GET /replica) target groups. */
  readonly writeTargetGroup: elbv2.ITargetGroup;
  readonly readTargetGroup: elbv2.ITargetGroup;
  /**
   * The ALB's PEM web target group: the pem component takes each web host out
   * of it while it upgrades. Needs the PEM documents.
   * @default - no web tier: the pem component is refused
   */
  readonly webTargetGroup?: elbv2.ITargetGroup;
  /** Where the upgrade function runs (it reads Patroni on the backends). */
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  /** A replica further behind blocks the start and each node's return. @default 1 MiB */
  readonly maxLagBytes?: number;
  /** An older open transaction on the primary blocks the start. @default 300 */
  readonly maxTransactionSeconds?: number;
}

/**
 * The rolling-upgrade runbook, started by hand: one node at a time, one
 * switchover, halting safely on any failure. Its task function reads EC2,
 * the NLB's target health and Patroni, and may switch over; the node steps
 * go through the shared node-command function.
 */
export class RollingUpgrade extends Construct implements ec2.IConnectable {
  readonly stateMachine: sfn.StateMachine;
  /** The upgrade's task function, in the VPC: admit it to Patroni's REST port. */
  readonly upgradeSteps: TaskFunction;

  constructor(scope: Construct, id: string, props: RollingUpgradeProps) {
    super(scope, id);
    const maxLagBytes = props.maxLagBytes ?? 1024 * 1024;
    const maxTransactionSeconds = props.maxTransactionSeconds ?? 300;
    if (!Number.isInteger(maxLagBytes) || maxLagBytes < 0) {
      throw new ValidationError(
        this,
        `maxLagBytes must be a whole number of bytes, 0 or more; got ${maxLagBytes}`,
      );
    }
    if (!Number.isInteger(maxTransactionSeconds) || maxTransactionSeconds < 1) {
      throw new ValidationError(
        this,
        `maxTransactionSeconds must be a whole number of seconds, 1 or more; got ${maxTransactionSeconds}`,
      );
    }
    const pem = props.webTargetGroup !== undefined;
    const missing = (['pemBackend', 'pemWeb'] as const).filter((k) => !props.documents.has(k));
    if (pem && missing.length) {
      throw new ValidationError(
        this,
        `webTargetGroup is given, so the pem component needs the PEM documents pemBackend and pemWeb; documents has no ${missing.join(' and no ')}`,
      );
    }
    // A stable, readable name (operators start it by hand).
    const stateMachineName = `${props.clusterName}-rolling-upgrade`;
    this.upgradeSteps = new TaskFunction(this, 'UpgradeSteps', {
      handlerFolder: 'upgrade',
      description: 'pem-ha: rolling upgrade preflight, waits, switchover and halt',
      environment: {
        CLUSTER_NAME: props.clusterName,
        TRUST_SECRET: props.pki.trustSecretName,
        REST_API_SECRET: literalNameOf(this, 'restApiSecret', props.restApiSecret),
        WRITE_TARGET_GROUP_ARN: props.writeTargetGroup.targetGroupArn,
        READ_TARGET_GROUP_ARN: props.readTargetGroup.targetGroupArn,
        ...(props.webTargetGroup && {
          WEB_TARGET_GROUP_ARN: props.webTargetGroup.targetGroupArn,
        }),
        MAX_LAG_BYTES: String(maxLagBytes),
        MAX_TRANSACTION_SECONDS: String(maxTransactionSeconds),
      },
      vpc: { vpc: props.vpc, subnets: props.subnets },
    });
    props.pki.grantReadTrust(this.upgradeSteps);
    props.restApiSecret.grantRead(this.upgradeSteps);
    const role = this.upgradeSteps.role;
    role.addToPolicy(
      new iam.PolicyStatement({
        // Neither action supports resource-level permissions.
        actions: ['ec2:DescribeInstances', 'elasticloadbalancing:DescribeTargetHealth'],
        resources: ['*'],
      }),
    );
    if (props.webTargetGroup) {
      role.addToPolicy(
        new iam.PolicyStatement({
          // The pem component takes each web host out of the ALB and back, this group only.
          actions: [
            'elasticloadbalancing:DeregisterTargets',
            'elasticloadbalancing:RegisterTargets',
          ],
          resources: [props.webTargetGroup.targetGroupArn],
        }),
      );
    }
    acknowledge(role, [
      [
        'Resource::*',
        'ec2:DescribeInstances, elasticloadbalancing:DescribeTargetHealth and the VPC network interfaces take no resource ARN.',
      ],
    ]);

    const fns = props.functions;
    this.stateMachine = runbookStateMachine(this, 'StateMachine', {
      comment: `pem-ha ${props.clusterName}: rolling upgrade, one node at a time, one switchover, halts safely`,
      stateMachineName,
      lock: { lock: props.functions.lock, runbook: 'upgrade' },
      definition: upgradeDefinition(this, {
        inventory: props.inventory,
        document: {
          name: props.documents.documentName('upgrade'),
          runTimeoutSeconds: props.documents.runTimeoutSeconds('upgrade'),
        },
        nodeCommand: fns.nodeCommand.function,
        upgradeSteps: this.upgradeSteps.function,
        ...(pem && {
          pem: { backend: props.documents.run('pemBackend'), web: props.documents.run('pemWeb') },
        }),
      }),
      invoked: [fns.nodeCommand, this.upgradeSteps],
      timeout: Duration.hours(12),
    });
  }

  get connections(): ec2.Connections {
    return this.upgradeSteps.connections;
  }

  /** Lets `grantee` start an upgrade. */
  grantStartExecution(grantee: iam.IGrantable): iam.Grant {
    return this.stateMachine.grantStartExecution(grantee);
  }

  /** Upgrade executions that failed (halted), timed out or were aborted. */
  metricFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.stateMachine.metricFailed(props);
  }
}
