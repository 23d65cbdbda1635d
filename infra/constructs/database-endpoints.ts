import { Duration, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as targets from 'aws-cdk-lib/aws-elasticloadbalancingv2-targets';
import { Construct } from 'constructs';
import { BackendTier, PATRONI_REST_PORT, POSTGRES_PORT } from './backend-tier';
import { checkRange } from './errors';

export const WRITE_PORT = 5432;
export const READ_PORT = 5433;
/**
 * Seconds a deregistered target keeps existing connections. Short: a node is
 * only deregistered when it leaves the cluster, and Patroni health checks have
 * already moved traffic away by then.
 */
export const DEREGISTRATION_DELAY_SECONDS = 10;

export interface DatabaseEndpointsProps {
  readonly vpc: ec2.IVpc;
  readonly subnets: readonly ec2.ISubnet[];
  readonly backend: BackendTier;
  /** @default 5 seconds (NLB allows 5-300) */
  readonly healthCheckInterval?: Duration;
  /** @default 2 (NLB allows 2-10) */
  readonly healthyThreshold?: number;
  /** @default 2 (NLB allows 2-10) */
  readonly unhealthyThreshold?: number;
  /** Replicas further behind than this leave the read endpoint. @default 16 MiB */
  readonly replicaMaxLagBytes?: number;
}

/**
 * The internal NLB clients use: 5432 reaches the current primary only (Patroni
 * answers 200 on `GET /primary` there alone), 5433 reaches caught-up replicas.
 */
export class DatabaseEndpoints extends Construct implements ec2.IConnectable {
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  readonly connections: ec2.Connections;
  readonly primaryTargetGroup: elbv2.NetworkTargetGroup;
  readonly replicaTargetGroup: elbv2.NetworkTargetGroup;

  constructor(scope: Construct, id: string, props: DatabaseEndpointsProps) {
    super(scope, id);
    const interval = props.healthCheckInterval ?? Duration.seconds(5);
    const healthyThreshold = props.healthyThreshold ?? 2;
    const unhealthyThreshold = props.unhealthyThreshold ?? 2;
    const maxLag = props.replicaMaxLagBytes ?? 16 * 1024 * 1024;
    checkRange(this, 'healthCheckInterval', interval.toSeconds(), 5, 300, ' s');
    checkRange(this, 'healthyThreshold', healthyThreshold, 2, 10);
    checkRange(this, 'unhealthyThreshold', unhealthyThreshold, 2, 10);
    checkRange(this, 'replicaMaxLagBytes', maxLag, 0, Number.MAX_SAFE_INTEGER);

    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'pem-ha database endpoints (NLB)',
      allowAllOutbound: false,
    });
    this.loadBalancer = new elbv2.NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc: props.vpc,
      vpcSubnets: { subnets: [...props.subnets] },
      internetFacing: false,
      // Exactly one target is healthy by design: without cross-zone, AZs with no
      // healthy target would drop out of DNS and clients resolving them would fail.
      crossZoneEnabled: true,
      securityGroups: [securityGroup],
      deletionProtection: true,
    });
    Validations.of(this.loadBalancer).acknowledge({
      id: 'AwsSolutions::AwsSolutions-ELB2',
      reason:
        'NLB access logs are written only for TLS listeners; both listeners are TCP pass-through (PostgreSQL negotiates TLS itself), so there is nothing to log. VPC flow logs record the connections.',
    });
    this.connections = new ec2.Connections({
      securityGroups: [securityGroup],
      defaultPort: ec2.Port.tcp(WRITE_PORT),
    });
    props.backend.allowLoadBalancer(this);

    const healthCheck = (path: string): elbv2.HealthCheck => ({
      protocol: elbv2.Protocol.HTTPS,
      port: String(PATRONI_REST_PORT),
      path,
      interval,
      // NLB wants the timeout below the interval.
      timeout: Duration.seconds(Math.max(2, Math.min(10, interval.toSeconds() - 1))),
      healthyThresholdCount: healthyThreshold,
      unhealthyThresholdCount: unhealthyThreshold,
    });
    this.primaryTargetGroup = this.targetGroup(
      'Primary',
      WRITE_PORT,
      healthCheck('/primary'),
      props.backend,
    );
    this.replicaTargetGroup = this.targetGroup(
      'Replica',
      READ_PORT,
      healthCheck(`/replica?lag=${maxLag}`),
      props.backend,
    );
    this.addPrimaryAlarms();
  }

  /** Admits a client network (`ec2.Peer.ipv4`) or a connectable to both endpoints. */
  allowClientsFrom(client: ec2.IConnectable, description: string): void {
    this.connections.allowFrom(client, ec2.Port.tcp(WRITE_PORT), `${description} (write endpoint)`);
    this.connections.allowFrom(client, ec2.Port.tcp(READ_PORT), `${description} (read endpoint)`);
  }

  /** Healthy targets behind the write endpoint: exactly 1 when all is well. */
  metricPrimaryHealthyHosts(options?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.primaryTargetGroup.metrics.healthyHostCount({ statistic: 'Minimum', ...options });
  }

  /** Healthy targets behind the read endpoint. */
  metricReplicaHealthyHosts(options?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.replicaTargetGroup.metrics.healthyHostCount({ statistic: 'Minimum', ...options });
  }

  /** Writes are down when no target answers `/primary`; two answering means split brain. */
  private addPrimaryAlarms(): void {
    new cloudwatch.Alarm(this, 'NoPrimaryAlarm', {
      alarmDescription: 'No backend passes the /primary health check: the write endpoint is down.',
      metric: this.metricPrimaryHealthyHosts({ period: Duration.minutes(1) }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 2,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    new cloudwatch.Alarm(this, 'SeveralPrimariesAlarm', {
      alarmDescription:
        'More than one backend passes the /primary health check: possible split brain.',
      metric: this.primaryTargetGroup.metrics.healthyHostCount({
        statistic: 'Maximum',
        period: Duration.minutes(1),
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  private targetGroup(
    name: string,
    listenerPort: number,
    healthCheck: elbv2.HealthCheck,
    backend: BackendTier,
  ): elbv2.NetworkTargetGroup {
    const group = new elbv2.NetworkTargetGroup(this, `${name}Targets`, {
      vpc: backend.vpc,
      port: POSTGRES_PORT,
      protocol: elbv2.Protocol.TCP,
      targetType: elbv2.TargetType.INSTANCE,
      targets: backend.nodes.map(
        (node) => new targets.InstanceTarget(node.instance, POSTGRES_PORT),
      ),
      healthCheck,
      // A backend that connects through the NLB and lands on itself fails with client IP preservation on.
      preserveClientIp: false,
      deregistrationDelay: Duration.seconds(DEREGISTRATION_DELAY_SECONDS),
      connectionTermination: true,
    });
    // Sessions on a node that stops being primary must end so clients reconnect to the new one.
    group.setAttribute('target_health_state.unhealthy.connection_termination.enabled', 'true');
    this.loadBalancer.addListener(`${name}Listener`, {
      port: listenerPort,
      protocol: elbv2.Protocol.TCP,
      defaultTargetGroups: [group],
    });
    return group;
  }
}
