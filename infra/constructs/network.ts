import { Fn, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { NetworkConfig } from '../config/load-config';
import { ValidationError } from './errors';

export const AZ_COUNT = 3;

export interface NetworkProps {
  /** A new VPC, or an existing one described without lookups. */
  readonly network: NetworkConfig;
  /** Encrypts the flow-log group. */
  readonly encryptionKey: kms.IKey;
}

/** Interface endpoints nodes need with no internet path: SSM agent, secrets, logs, KMS, metrics. */
const INTERFACE_ENDPOINTS: ReadonlyArray<[string, ec2.InterfaceVpcEndpointAwsService]> = [
  ['Ssm', ec2.InterfaceVpcEndpointAwsService.SSM],
  ['SsmMessages', ec2.InterfaceVpcEndpointAwsService.SSM_MESSAGES],
  ['Ec2Messages', ec2.InterfaceVpcEndpointAwsService.EC2_MESSAGES],
  ['SecretsManager', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
  ['Logs', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
  ['Kms', ec2.InterfaceVpcEndpointAwsService.KMS],
  // The nodes' metric collectors: their heartbeat must not depend on the NAT path.
  ['Monitoring', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING],
];

/**
 * The VPC the cluster lives in: three AZs, nodes in private subnets. A new VPC
 * gets NAT, the endpoints above, an S3 gateway endpoint and flow logs; an
 * imported one is taken as it is.
 */
export class Network extends Construct {
  readonly vpc: ec2.IVpc;
  /** One private subnet per AZ, in AZ order. */
  readonly privateSubnets: readonly ec2.ISubnet[];
  /** CIDRs of `privateSubnets`, known at synth time: fixed node addresses are placed in them. */
  readonly privateSubnetCidrs: readonly string[];

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    const { network } = props;
    const zones = network.availabilityZones;
    if (zones !== undefined && zones.length !== AZ_COUNT) {
      throw new ValidationError(
        this,
        `availabilityZones must list ${AZ_COUNT} AZs; got ${zones.length}`,
      );
    }
    if (network.kind === 'imported') {
      this.vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
        vpcId: network.vpcId,
        availabilityZones: [...network.availabilityZones],
        privateSubnetIds: [...network.privateSubnetIds],
        privateSubnetIpv4CidrBlocks: [...network.privateSubnetCidrs],
      });
      this.privateSubnets = this.vpc.privateSubnets;
      this.privateSubnetCidrs = network.privateSubnetCidrs;
      return;
    }

    const vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(network.cidr),
      // Environment-agnostic stacks see only two AZs unless told otherwise.
      availabilityZones: zones ? [...zones] : [0, 1, 2].map((i) => Fn.select(i, Fn.getAzs())),
      natGateways: network.natGateways,
      restrictDefaultSecurityGroup: true,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 24 },
      ],
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
    });
    props.encryptionKey.grantEncryptDecrypt(
      new iam.ServicePrincipal(`logs.${Stack.of(this).region}.amazonaws.com`),
    );
    const flowLogGroup = new logs.LogGroup(this, 'FlowLogs', {
      retention: logs.RetentionDays.ONE_YEAR,
      encryptionKey: props.encryptionKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });
    const endpointSubnets = { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };
    for (const [name, service] of INTERFACE_ENDPOINTS) {
      const endpoint = vpc.addInterfaceEndpoint(name, {
        service,
        subnets: endpointSubnets,
        privateDnsEnabled: true,
        open: false,
      });
      // The literal CIDR rather than the VPC's CidrBlock attribute keeps the rule checkable.
      endpoint.connections.allowDefaultPortFrom(
        ec2.Peer.ipv4(network.cidr),
        'HTTPS from inside the VPC',
      );
    }
    this.vpc = vpc;
    this.privateSubnets = vpc.privateSubnets;
    this.privateSubnetCidrs = vpc.privateSubnets.map((subnet) => subnet.ipv4CidrBlock);
  }
}
