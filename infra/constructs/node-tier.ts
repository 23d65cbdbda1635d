import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import type { Tier } from '../../functions/lib/inventory';
import { ValidationError } from './errors';
import { ClusterNode, NodeGroup, NodePlacementProps, nodeSecurityGroup } from './node-group';

/** Placement of a tier whose members are named by address before they exist. */
export interface FixedAddressPlacementProps extends NodePlacementProps {
  /**
   * CIDRs of `subnets`, in the same order and known at synth time: each node
   * gets a fixed address in its subnet, so certificates and peer lists can
   * name it.
   */
  readonly subnetCidrs: readonly string[];
}

/** What each tier decides for itself; `NodeTier` does the rest alike. */
export interface TierSpec {
  readonly tier: Tier;
  /** The security group's description, after the cluster name. */
  readonly description: string;
  /** The port `connections` admits clients to by default. */
  readonly defaultPort: number;
  /** Ports the members reach each other on, each with why. @default - none */
  readonly peerPorts?: readonly (readonly [port: number, description: string])[];
  readonly defaultNodeCount: number;
  /** The fewest nodes the tier works with. */
  readonly minNodeCount: number;
  /** A quorum needs an odd count. @default false */
  readonly oddNodeCount?: boolean;
  readonly defaultInstanceType: string;
  /**
   * Host offset of the first node's fixed address in each subnet (needs
   * `subnetCidrs`). @default - addresses assigned by EC2
   */
  readonly addressOffset?: number;
}

/**
 * What every tier of cluster nodes has alike: a node security group (egress
 * HTTPS and HTTP only) open to the members on their peer ports, the
 * connections clients are admitted through, and a NodeGroup of
 * termination-protected instances.
 */
export abstract class NodeTier extends Construct implements ec2.IConnectable {
  readonly connections: ec2.Connections;
  readonly group: NodeGroup;

  protected constructor(
    scope: Construct,
    id: string,
    props: NodePlacementProps & { readonly subnetCidrs?: readonly string[] },
    spec: TierSpec,
  ) {
    super(scope, id);
    const nodeCount = props.nodeCount ?? spec.defaultNodeCount;
    const odd = spec.oddNodeCount ?? false;
    if (
      !Number.isInteger(nodeCount) ||
      nodeCount < spec.minNodeCount ||
      (odd && nodeCount % 2 === 0)
    ) {
      throw new ValidationError(
        this,
        `nodeCount must be ${odd ? 'an odd integer' : 'an integer'} of at least ${spec.minNodeCount}; got ${nodeCount}`,
      );
    }
    const securityGroup = nodeSecurityGroup(
      this,
      props.vpc,
      `${props.clusterName} ${spec.description}`,
    );
    this.connections = new ec2.Connections({
      securityGroups: [securityGroup],
      defaultPort: ec2.Port.tcp(spec.defaultPort),
    });
    for (const [port, description] of spec.peerPorts ?? []) {
      this.connections.allowInternally(ec2.Port.tcp(port), description);
    }
    this.group = new NodeGroup(this, 'Nodes', {
      clusterName: props.clusterName,
      tier: spec.tier,
      vpc: props.vpc,
      subnets: props.subnets,
      nodeCount,
      instanceType: props.instanceType ?? new ec2.InstanceType(spec.defaultInstanceType),
      amiFamily: props.amiFamily,
      amiId: props.amiId,
      securityGroup,
      encryptionKey: props.encryptionKey,
      fixedAddresses:
        spec.addressOffset === undefined
          ? undefined
          : { subnetCidrs: props.subnetCidrs ?? [], offset: spec.addressOffset },
      terminationProtection: true,
    });
  }

  /** The tier's nodes, in name order (`<tier>-1`, `<tier>-2`, ...). */
  get nodes(): readonly ClusterNode[] {
    return this.group.nodes;
  }
}
