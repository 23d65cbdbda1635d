import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { FixedAddressPlacementProps, NodeTier } from './node-tier';

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
/** Host offset of the first etcd member in each private subnet. */
const ETCD_ADDRESS_OFFSET = 10;

export interface EtcdTierProps extends FixedAddressPlacementProps {
  /** Members; odd so that a majority survives the loss of any minority. @default 3 */
  readonly nodeCount?: number;
  /** @default t3.small */
  readonly instanceType?: ec2.InstanceType;
}

/**
 * The DCS: etcd members spread over the AZs at fixed addresses (their
 * certificates and `initial-cluster` name them). Peers talk on 2380 among
 * themselves only, and reach each other's 2379 for health checks; clients
 * are admitted on 2379 with `allowClientsFrom`.
 */
export class EtcdTier extends NodeTier {
  constructor(scope: Construct, id: string, props: EtcdTierProps) {
    super(scope, id, props, {
      tier: 'etcd',
      description: 'etcd members',
      defaultPort: ETCD_CLIENT_PORT,
      peerPorts: [
        [ETCD_PEER_PORT, 'etcd peer traffic among members'],
        // `etcdctl endpoint health --cluster`, which the etcd document and
        // upgrades run on each member, asks every member's client URL.
        [ETCD_CLIENT_PORT, 'etcd health checks among members'],
      ],
      defaultNodeCount: 3,
      minNodeCount: 3,
      oddNodeCount: true,
      defaultInstanceType: 't3.small',
      addressOffset: ETCD_ADDRESS_OFFSET,
    });
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
