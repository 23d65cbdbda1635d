import { Duration, Stack, Tags, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import type { AmiFamily } from '../config/load-config';
import { hostAddress } from '../config/ipv4';
import { ValidationError } from './errors';
import { acknowledge, arnOf } from './nag';
import { nodeImage } from './node-image';
import type { Tier } from '../../functions/lib/inventory';

/** Tag keys the bootstrap flow and IAM conditions select nodes by. */
export const CLUSTER_TAG = 'pem-ha:cluster';
export const TIER_TAG = 'pem-ha:tier';

/** Where and on what a tier's nodes run: the props every tier takes alike. */
export interface NodePlacementProps {
  /** Names the nodes (`<clusterName>-<tier>-<n>`) and tags them with `pem-ha:cluster`. */
  readonly clusterName: string;
  readonly vpc: ec2.IVpc;
  /** One private subnet per AZ; node i goes to subnet i mod length. */
  readonly subnets: readonly ec2.ISubnet[];
  /** OS family: which vendor image parameter and root device name the nodes use. */
  readonly amiFamily: AmiFamily;
  /** Pin every node to this image. @default - the family's latest image, resolved at deploy time */
  readonly amiId?: string;
  /** Encrypts the nodes' EBS volumes. */
  readonly encryptionKey: kms.IKey;
  /** @default - the tier's own: etcd 3, backend 3, web 2 */
  readonly nodeCount?: number;
  /** @default - the tier's own: etcd t3.small, backend m6i.large, web t3.medium */
  readonly instanceType?: ec2.InstanceType;
}

export interface NodeGroupProps extends NodePlacementProps {
  readonly tier: Tier;
  readonly nodeCount: number;
  readonly instanceType: ec2.InstanceType;
  readonly securityGroup: ec2.ISecurityGroup;
  /**
   * Give node i the fixed address `fixedAddresses.offset + floor(i / subnets)` in
   * its subnet, so certificates and peer lists can name it before it exists.
   * @default - addresses assigned by EC2
   */
  readonly fixedAddresses?: { readonly subnetCidrs: readonly string[]; readonly offset: number };
  /** @default false */
  readonly terminationProtection?: boolean;
  /** @default 16 */
  readonly rootVolumeSizeGiB?: number;
}

export interface ClusterNode {
  /** Stable node name, e.g. `backend-2`: Patroni member name and certificate CN. */
  readonly name: string;
  readonly instance: ec2.Instance;
  readonly privateIp: string;
}

/** Root device of each family's official AMIs; a wrong name would add a second volume. */
const ROOT_DEVICE: Record<AmiFamily, string> = {
  'ubuntu-24.04': '/dev/sda1',
  'debian-12': '/dev/xvda',
  'debian-13': '/dev/xvda',
};

/**
 * The EC2 instances of one tier, with the hygiene every node shares: IMDSv2,
 * encrypted gp3 root volume, no key pair (Session Manager only), SSM agent
 * permissions, detailed monitoring and an auto-recovery alarm per node.
 */
export class NodeGroup extends Construct implements iam.IGrantable {
  readonly role: iam.Role;
  readonly nodes: readonly ClusterNode[];
  readonly grantPrincipal: iam.IPrincipal;

  constructor(scope: Construct, id: string, props: NodeGroupProps) {
    super(scope, id);
    validate(this, props);
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: `${props.clusterName} ${props.tier} nodes: SSM agent and their own secrets`,
    });
    this.grantPrincipal = this.role;
    grantSsmAgent(this.role);
    const subnetCount = props.subnets.length;
    this.nodes = Array.from({ length: props.nodeCount }, (_, index) => {
      const name = `${props.tier}-${index + 1}`;
      const subnet = props.subnets[index % subnetCount];
      const privateIpAddress = props.fixedAddresses
        ? hostAddress(
            props.fixedAddresses.subnetCidrs[index % subnetCount],
            props.fixedAddresses.offset + Math.floor(index / subnetCount),
          )
        : undefined;
      const instance = new ec2.Instance(this, `Node${index + 1}`, {
        vpc: props.vpc,
        vpcSubnets: { subnets: [subnet] },
        instanceType: props.instanceType,
        machineImage: nodeImage(this, props.amiFamily, props.instanceType, props.amiId),
        role: this.role,
        securityGroup: props.securityGroup,
        privateIpAddress,
        requireImdsv2: true,
        detailedMonitoring: true,
        disableApiTermination: props.terminationProtection ?? false,
        ebsOptimized: true,
        blockDevices: [
          {
            deviceName: ROOT_DEVICE[props.amiFamily],
            volume: ec2.BlockDeviceVolume.ebs(props.rootVolumeSizeGiB ?? 16, {
              volumeType: ec2.EbsDeviceVolumeType.GP3,
              encrypted: true,
              kmsKey: props.encryptionKey,
            }),
          },
        ],
      });
      // With an account and region the subnet's zone is a literal in the template.
      Validations.of(instance).acknowledge({
        id: 'CloudFormation-Validate::W3010',
        reason:
          "Each node sits in its own subnet's availability zone, read from the VPC; the zone is not chosen by hand.",
      });
      if (props.amiId) {
        Validations.of(instance).acknowledge({
          id: 'CloudFormation-Validate::W9010',
          reason:
            'The amiId setting pins the image on purpose (a re-resolved latest image would replace every node on the next deploy); it is the PinnedAmiId stack parameter, overridable at deploy time.',
        });
      }
      Tags.of(instance).add('Name', `${props.clusterName}-${name}`);
      Tags.of(instance).add(CLUSTER_TAG, props.clusterName);
      Tags.of(instance).add(TIER_TAG, props.tier);
      Tags.of(instance).add('pem-ha:node', name);
      const node = { name, instance, privateIp: privateIpAddress ?? instance.instancePrivateIp };
      this.addRecoveryAlarm(node);
      this.addStatusCheckAlarm(node, props.clusterName);
      return node;
    });
  }

  /** StatusCheckFailed_System of a node: host failures that EC2 can recover from. */
  metricSystemStatusCheckFailed(node: ClusterNode): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/EC2',
      metricName: 'StatusCheckFailed_System',
      dimensionsMap: { InstanceId: node.instance.instanceId },
      statistic: 'Maximum',
      period: Duration.minutes(1),
    });
  }

  /** 1 while any of a node's status checks fails: system, instance or attached EBS. */
  metricStatusCheckFailed(node: ClusterNode): cloudwatch.MathExpression {
    const check = (metricName: string) =>
      new cloudwatch.Metric({
        namespace: 'AWS/EC2',
        metricName,
        dimensionsMap: { InstanceId: node.instance.instanceId },
        statistic: 'Maximum',
        period: Duration.minutes(1),
      });
    return new cloudwatch.MathExpression({
      // StatusCheckFailed covers the system and instance checks.
      expression: 'MAX([checks, ebs])',
      usingMetrics: {
        checks: check('StatusCheckFailed'),
        ebs: check('StatusCheckFailed_AttachedEBS'),
      },
      label: `${node.name} status checks failed`,
      period: Duration.minutes(1),
    });
  }

  private addStatusCheckAlarm(node: ClusterNode, clusterName: string) {
    new cloudwatch.Alarm(this, `${node.instance.node.id}StatusCheckAlarm`, {
      alarmDescription: `pem-ha ${clusterName}: an EC2 status check of ${node.name} (system, instance or attached EBS) failed for 2 minutes. A system failure is recovered in place by its Recovery alarm; an instance or EBS failure needs a reboot, or the node replacement runbook.`,
      metric: this.metricStatusCheckFailed(node),
      threshold: 1,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  private addRecoveryAlarm(node: ClusterNode) {
    const alarm = new cloudwatch.Alarm(this, `${node.instance.node.id}Recovery`, {
      alarmDescription: `Recover ${node.name} onto healthy hardware when its host fails (same id, address and volumes).`,
      metric: this.metricSystemStatusCheckFailed(node),
      threshold: 1,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.MISSING,
    });
    alarm.addAlarmAction(new cwActions.Ec2Action(cwActions.Ec2InstanceAction.RECOVER));
  }
}

/**
 * A node security group whose only way out besides the cluster's own rules is
 * HTTPS (AWS endpoints, package repositories) and HTTP (Ubuntu/Debian mirrors
 * sign their indexes, so plain HTTP is how they are served).
 */
export function nodeSecurityGroup(
  scope: Construct,
  vpc: ec2.IVpc,
  description: string,
): ec2.SecurityGroup {
  const group = new ec2.SecurityGroup(scope, 'SecurityGroup', {
    vpc,
    description,
    allowAllOutbound: false,
  });
  group.addEgressRule(
    ec2.Peer.anyIpv4(),
    ec2.Port.tcp(443),
    'HTTPS: AWS APIs and package repositories',
  );
  group.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(80), 'HTTP: signed OS package mirrors');
  return group;
}

function validate(scope: Construct, props: NodeGroupProps) {
  if (!Number.isInteger(props.nodeCount) || props.nodeCount < 1) {
    throw new ValidationError(
      scope,
      `nodeCount must be a positive integer; got ${props.nodeCount}`,
    );
  }
  if (props.subnets.length < 1) {
    throw new ValidationError(scope, 'subnets must hold at least one subnet; got none');
  }
  if (props.fixedAddresses && props.fixedAddresses.subnetCidrs.length !== props.subnets.length) {
    throw new ValidationError(
      scope,
      `fixedAddresses.subnetCidrs must have one CIDR per subnet (${props.subnets.length}); got ${props.fixedAddresses.subnetCidrs.length}`,
    );
  }
}

/**
 * What the SSM agent needs for Run Command and Session Manager, and nothing
 * else: AmazonSSMManagedInstanceCore would also let every node read every
 * Parameter Store value and document in the account (ssm:GetParameter(s),
 * ssm:GetDocument on *). No State Manager, inventory or patching is used.
 */
function grantSsmAgent(role: iam.Role): void {
  // The agent registers and reports its own instance.
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['ssm:UpdateInstanceInformation'],
      resources: [
        Stack.of(role).formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' }),
      ],
    }),
  );
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: [
        // Its poll for State Manager associations (none here): denied, it logs an error a minute.
        'ssm:ListInstanceAssociations',
        // Run Command's delivery channel.
        'ec2messages:AcknowledgeMessage',
        'ec2messages:DeleteMessage',
        'ec2messages:FailMessage',
        'ec2messages:GetEndpoint',
        'ec2messages:GetMessages',
        'ec2messages:SendReply',
        // The control channel (Run Command on recent agents) and Session Manager.
        'ssmmessages:CreateControlChannel',
        'ssmmessages:CreateDataChannel',
        'ssmmessages:OpenControlChannel',
        'ssmmessages:OpenDataChannel',
      ],
      resources: ['*'],
    }),
  );
  acknowledge(role, [
    [
      `Resource::${arnOf(role, 'ec2', 'instance/*')}`,
      "ssm:UpdateInstanceInformation: the agent reports its own instance, whose id the role's policy cannot name (the instance is made after its role).",
    ],
    [
      'Resource::*',
      "The SSM agent's message channels (ec2messages:*, ssmmessages:*) and ssm:ListInstanceAssociations take no resource ARN; the list is the agent's documented minimum for Run Command and Session Manager, without the Parameter Store and document reads of AmazonSSMManagedInstanceCore.",
    ],
  ]);
}
