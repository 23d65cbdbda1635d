import { RemovalPolicy, Size, Tags } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import type { ClusterNode } from './node-group';
import { FixedAddressPlacementProps, NodeTier } from './node-tier';

export const POSTGRES_PORT = 5432;
export const PATRONI_REST_PORT = 8008;
/** pgBackRest's TLS server: a backup on a replica reaches the primary through it. */
export const PGBACKREST_SERVER_PORT = 8432;
/** Host offset of the first backend node in each private subnet. */
const BACKEND_ADDRESS_OFFSET = 20;
/** Device the data volume is attached as; the node documents mount it. */
export const DATA_VOLUME_DEVICE = '/dev/sdf';

export interface BackendTierProps extends FixedAddressPlacementProps {
  /** Patroni members, at least 2. @default 3 */
  readonly nodeCount?: number;
  /** @default m6i.large */
  readonly instanceType?: ec2.InstanceType;
  /** Size of each node's separate data volume. @default 100 GiB */
  readonly dataVolumeSize?: Size;
}

export interface BackendNode extends ClusterNode {
  readonly dataVolume: ec2.Volume;
}

/**
 * Patroni-managed PostgreSQL nodes, one per AZ at fixed addresses, each with
 * its own encrypted gp3 data volume that outlives the instance. Peers reach
 * each other on 5432 (replication, pg_rewind), 8008 (Patroni REST) and 8432
 * (pgBackRest's TLS server, for backups taken on a replica).
 */
export class BackendTier extends NodeTier {
  readonly vpc: ec2.IVpc;
  private readonly backendNodes: readonly BackendNode[];

  constructor(scope: Construct, id: string, props: BackendTierProps) {
    super(scope, id, props, {
      tier: 'backend',
      description: 'Patroni/PostgreSQL nodes',
      defaultPort: POSTGRES_PORT,
      peerPorts: [
        [POSTGRES_PORT, 'replication and pg_rewind among peers'],
        [PATRONI_REST_PORT, 'Patroni REST API among peers'],
        [PGBACKREST_SERVER_PORT, 'pgBackRest TLS server among peers (backups from a replica)'],
      ],
      defaultNodeCount: 3,
      minNodeCount: 2,
      defaultInstanceType: 'm6i.large',
      addressOffset: BACKEND_ADDRESS_OFFSET,
    });
    this.vpc = props.vpc;
    const dataVolumeSize = props.dataVolumeSize ?? Size.gibibytes(100);
    this.backendNodes = this.group.nodes.map((node) => ({
      ...node,
      dataVolume: this.attachDataVolume(node, dataVolumeSize, props.encryptionKey),
    }));
  }

  /** The backends with their data volumes, in name order. */
  override get nodes(): readonly BackendNode[] {
    return this.backendNodes;
  }

  /** Admits `peer` (the NLB) to PostgreSQL and to the Patroni health endpoints. */
  allowLoadBalancer(peer: ec2.IConnectable): void {
    this.connections.allowFrom(peer, ec2.Port.tcp(POSTGRES_PORT), 'database endpoint traffic');
    this.connections.allowFrom(
      peer,
      ec2.Port.tcp(PATRONI_REST_PORT),
      'health checks on Patroni REST',
    );
  }

  /** Admits a reader of Patroni's REST API (the runbooks' cluster status function). */
  allowPatroniClient(peer: ec2.IConnectable, description: string): void {
    this.connections.allowFrom(peer, ec2.Port.tcp(PATRONI_REST_PORT), description);
  }

  /** Admits a database client (web tier, client CIDRs) to PostgreSQL. */
  allowDatabaseClient(peer: ec2.IConnectable, description: string): void {
    this.connections.allowFrom(peer, ec2.Port.tcp(POSTGRES_PORT), description);
  }

  /**
   * libpq multi-host URI of every backend: clients find the primary themselves
   * (the seeds' SM pattern) and move within seconds, independent of the NLB.
   * They verify each backend's certificate (its address is in it) against
   * the cluster's roots, saved as `rootCertificateFile`.
   */
  multiHostConnectionString(rootCertificateFile: string, database = 'postgres'): string {
    const hosts = this.nodes.map((node) => `${node.privateIp}:${POSTGRES_PORT}`).join(',');
    return `postgresql://${hosts}/${database}?target_session_attrs=read-write&sslmode=verify-full&sslrootcert=${rootCertificateFile}&connect_timeout=5`;
  }

  private attachDataVolume(node: ClusterNode, size: Size, key: kms.IKey): ec2.Volume {
    const volume = new ec2.Volume(this, `${node.instance.node.id}Data`, {
      availabilityZone: node.instance.instanceAvailabilityZone,
      size,
      volumeType: ec2.EbsDeviceVolumeType.GP3,
      encrypted: true,
      encryptionKey: key,
      // The database outlives a replaced instance; a deleted stack leaves a snapshot.
      removalPolicy: RemovalPolicy.SNAPSHOT,
    });
    Tags.of(volume).add('Name', `${node.name}-data`);
    new ec2.CfnVolumeAttachment(this, `${node.instance.node.id}DataAttachment`, {
      instanceId: node.instance.instanceId,
      volumeId: volume.volumeId,
      device: DATA_VOLUME_DEVICE,
    });
    return volume;
  }
}
