import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { ClusterPki } from './cluster-pki';
import { ValidationError } from './errors';
import { acknowledge, arnOf } from './nag';
import { NodeDocuments } from './node-documents';
import { RunbookLock } from './runbook-lock';
import { TaskFunction } from './task-function';

export interface RunbookFunctionsProps {
  readonly clusterName: string;
  readonly documents: NodeDocuments;
  readonly pki: ClusterPki;
  /** Where the function that reads Patroni's REST API runs (the backends' subnets). */
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  /** Encrypts the runbook lock's table. */
  readonly encryptionKey: kms.IKey;
  /**
   * The database endpoint's DNS name (the NLB's), which the backends'
   * PostgreSQL certificates carry for clients that verify it.
   * @default - the certificates name the nodes only
   */
  readonly databaseEndpointName?: string;
  /** Leaf certificate lifetime. @default 90 */
  readonly leafValidityDays?: number;
  /** A replica further behind (received or replayed) fails the cluster checks. @default 1 MiB */
  readonly maxLagBytes?: number;
}

/**
 * The Lambda tasks the runbooks (bootstrap, certificate rotation) share, each
 * with the least it needs: sending documents, making the CA, signing with the
 * intermediate only, publishing certificate expiry, reading Patroni.
 */
export class RunbookFunctions extends Construct {
  readonly nodeCommand: TaskFunction;
  readonly clusterCa: TaskFunction;
  readonly signCertificates: TaskFunction;
  readonly recordExpiry: TaskFunction;
  /** In the VPC: admit it to Patroni's REST port with `connections`. */
  readonly clusterStatus: TaskFunction;
  /** One runbook at a time: every runbook but the read-only ones takes it first. */
  readonly lock: RunbookLock;
  /** Checks a runbook's execution input in its first state; it reads and touches nothing. */
  readonly checkInput: TaskFunction;

  constructor(scope: Construct, id: string, props: RunbookFunctionsProps) {
    super(scope, id);
    const validity = props.leafValidityDays ?? 90;
    if (!Number.isInteger(validity) || validity < 2 || validity > 825) {
      throw new ValidationError(
        this,
        `leafValidityDays must be a whole number from 2 to 825; got ${validity}`,
      );
    }
    const maxLagBytes = props.maxLagBytes ?? 1024 * 1024;
    if (!Number.isSafeInteger(maxLagBytes) || maxLagBytes < 0) {
      throw new ValidationError(
        this,
        `maxLagBytes must be a whole number of bytes, 0 or more; got ${maxLagBytes}`,
      );
    }
    const { documents, pki } = props;
    this.lock = new RunbookLock(this, 'Lock', { encryptionKey: props.encryptionKey });
    this.checkInput = new TaskFunction(this, 'CheckInput', {
      handlerFolder: 'check-input',
      description: "pem-ha: refuses a runbook's input with an unknown field or a bad value",
    });
    this.nodeCommand = new TaskFunction(this, 'NodeCommand', {
      handlerFolder: 'node-command',
      description: 'pem-ha: sends a node document through SSM and polls it',
    });
    documents.grantRun(this.nodeCommand, props.clusterName);
    // A poll asks EC2 whether the node still runs (InstanceNotRunningError), and
    // cancels a command it gives up on so it never runs late.
    this.nodeCommand.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['ec2:DescribeInstances', 'ssm:CancelCommand'],
        resources: ['*'],
      }),
    );
    this.clusterCa = new TaskFunction(this, 'ClusterCa', {
      handlerFolder: 'cluster-ca',
      description: 'pem-ha: makes the cluster CA once',
      environment: {
        CLUSTER_NAME: props.clusterName,
        ROOT_CA_SECRET: pki.rootSecretName,
        INTERMEDIATE_CA_SECRET: pki.intermediateSecretName,
        TRUST_SECRET: pki.trustSecretName,
        ROOTS_PARAMETER: pki.rootsParameterName,
      },
    });
    pki.grantManage(this.clusterCa);
    pki.grantPublishRoots(this.clusterCa);
    this.signCertificates = new TaskFunction(this, 'SignCertificates', {
      handlerFolder: 'sign-certificates',
      description: "pem-ha: checks nodes' certificate requests and signs them",
      environment: {
        INTERMEDIATE_CA_SECRET: pki.intermediateSecretName,
        LEAF_VALIDITY_DAYS: String(validity),
        ...(props.databaseEndpointName && {
          DATABASE_ENDPOINT_NAME: props.databaseEndpointName,
        }),
      },
    });
    pki.grantIssue(this.signCertificates);
    documents.grantReadResults(this.signCertificates);
    this.recordExpiry = new TaskFunction(this, 'RecordExpiry', {
      handlerFolder: 'record-expiry',
      description: 'pem-ha: publishes DaysToExpiry of node and CA certificates',
      environment: { CLUSTER_NAME: props.clusterName, TRUST_SECRET: pki.trustSecretName },
    });
    pki.grantReadTrust(this.recordExpiry);
    documents.grantReadResults(this.recordExpiry);
    this.clusterStatus = new TaskFunction(this, 'ClusterStatus', {
      handlerFolder: 'cluster-status',
      description: "pem-ha: reads Patroni's cluster view (leader, timeline, members)",
      environment: { TRUST_SECRET: pki.trustSecretName, MAX_LAG_BYTES: String(maxLagBytes) },
      vpc: { vpc: props.vpc, subnets: props.subnets },
    });
    pki.grantReadTrust(this.clusterStatus);

    const getInvocation =
      'ssm:GetCommandInvocation takes no resource ARN (command ids are unknown before SendCommand).';
    acknowledge(this.nodeCommand.role, [
      [
        'Resource::*',
        `${getInvocation} ec2:DescribeInstances supports no resource-level permissions (read-only); ` +
          'ssm:CancelCommand takes only command ids, known after SendCommand.',
      ],
      [
        `Resource::${arnOf(this, 'ec2', 'instance/*')}`,
        `SendCommand reaches only instances tagged pem-ha:cluster=${props.clusterName} (ssm:resourceTag condition).`,
      ],
    ]);
    acknowledge(this.signCertificates.role, [['Resource::*', getInvocation]]);
    acknowledge(this.recordExpiry.role, [['Resource::*', getInvocation]]);
    acknowledge(this.clusterStatus.role, [
      [
        'Resource::*',
        'A VPC function manages its network interfaces, whose ids are unknown in advance.',
      ],
    ]);
  }

  /** Every function, for roles that invoke them. */
  get all(): readonly TaskFunction[] {
    return [
      this.nodeCommand,
      this.clusterCa,
      this.signCertificates,
      this.recordExpiry,
      this.clusterStatus,
    ];
  }
}
