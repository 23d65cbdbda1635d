import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import type { AmiFamily } from '../config/load-config';
import { ClusterNode, NodeGroup, nodeSecurityGroup } from './node-group';

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
/** Host offset of the first etcd member in each private subnet. */
const ETCD_ADDRESS_OFFSET = 10;

export interface EtcdTierProps {
  readonly clusterName: string;
  readonly vpc: ec2.IVpc;
  readonly subnets: readonly ec2.ISubnet[];
  readonly subnetCidrs: readonly string[];
  /** Members; odd so that a majority survives the loss of any minority. @default 3 */
  readonly nodeCount?: number;
  /** @default t3.small */
  readonly instanceType?: ec2.InstanceType;
  readonly amiFamily: AmiFamily;
  /** @default - latest image of amiFamily */
  readonly amiId?: string;
  readonly encryptionKey: kms.IKey;
}

/**
 * The DCS: etcd members spread over the AZs at fixed addresses (their
 * certificates and `initial-cluster` name them). Peers talk on 2380 among
 * themselves only, and reach each other's 2379 for health checks; clients
 * are admitted on 2379 with `allowClientsFrom`.
 */
export class EtcdTier extends Construct implements ec2.IConnectable {
  readonly connections: ec2.Connections;
  readonly nodes: readonly ClusterNode[];
  readonly group: NodeGroup;

  constructor(scope: Construct, id: string, props: EtcdTierProps) {
    super(scope, id);
    const nodeCount = props.nodeCount ?? 3;
    if (!Number.isInteger(nodeCount) || nodeCount < 3 || nodeCount % 2 === 0) {
      throw new Error(`EtcdTier: nodeCount must be an odd integer of at least 3; got ${nodeCount}`);
    }
    const securityGroup = nodeSecurityGroup(this, props.vpc, `${props.clusterName} etcd members`);
    this.connections = new ec2.Connections({
      securityGroups: [securityGroup],
      defaultPort: ec2.Port.tcp(ETCD_CLIENT_PORT),
    });
    this.connections.allowInternally(
      ec2.Port.tcp(ETCD_PEER_PORT),
      'etcd peer traffic among members',
    );
    // `etcdctl endpoint health --cluster`, which the etcd document and upgrades
    // run on each member, asks every member's client URL.
    this.connections.allowInternally(
      ec2.Port.tcp(ETCD_CLIENT_PORT),
      'etcd health checks among members',
    );
    this.group = new NodeGroup(this, 'Nodes', {
      clusterName: props.clusterName,
      tier: 'etcd',
      vpc: props.vpc,
      subnets: props.subnets,
      nodeCount,
      instanceType: props.instanceType ?? new ec2.InstanceType('t3.small'),
      amiFamily: props.amiFamily,
      amiId: props.amiId,
      securityGroup,
      encryptionKey: props.encryptionKey,
      fixedAddresses: { subnetCidrs: props.subnetCidrs, offset: ETCD_ADDRESS_OFFSET },
      terminationProtection: true,
    });
    this.nodes = this.group.nodes;
  }

  /** Admits `client` to the etcd client port. */
  allowClientsFrom(client: ec2.IConnectable): void {
    this.connections.allowDefaultPortFrom(client, 'etcd clients (Patroni)');
  }

  /** `https://ip:2379` of every member, as Patroni's etcd3 `hosts` wants them. */
  get clientEndpoints(): string[] {
    return this.nodes.map((node) => `${node.privateIp}:${ETCD_CLIENT_PORT}`);
  }
}
