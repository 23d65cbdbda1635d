import {
  CfnCondition,
  CfnResource,
  Duration,
  Fn,
  RemovalPolicy,
  Stack,
  Token,
  Validations,
} from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { FactName } from 'aws-cdk-lib/region-info';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as targets from 'aws-cdk-lib/aws-elasticloadbalancingv2-targets';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { AmiFamily } from '../config/load-config';
import { SelfSignedWebCertificate } from './web-certificate';
import { ClusterNode, NodeGroup, nodeSecurityGroup } from './node-group';

export const PEM_WEB_PORT = 8443;
export const WEB_LISTENER_PORT = 443;
/** PEM's login page answers 200 once the web application and its backend connection are up. */
export const PEM_HEALTH_CHECK_PATH = '/pem/login';

export interface WebTierProps {
  readonly clusterName: string;
  readonly vpc: ec2.IVpc;
  /** Subnets of the instances, one per AZ. */
  readonly subnets: readonly ec2.ISubnet[];
  /** @default 2 */
  readonly nodeCount?: number;
  /** @default t3.medium */
  readonly instanceType?: ec2.InstanceType;
  readonly amiFamily: AmiFamily;
  /** @default - latest image of amiFamily */
  readonly amiId?: string;
  readonly encryptionKey: kms.IKey;
  /** @default false (internal) */
  readonly internetFacing?: boolean;
  /** @default - a self-signed certificate for the ALB's DNS name, issued at deploy */
  readonly certificateArn?: string;
  /** How long a browser session stays on one instance. @default 1 day */
  readonly stickinessDuration?: Duration;
}

/**
 * PEM web application instances behind an ALB: HTTPS 443 to HTTPS 8443 with
 * sticky sessions, because PEM keeps session state on the instance.
 */
export class WebTier extends Construct implements ec2.IConnectable {
  /** The instances' connections (they reach the backend as clients). */
  readonly connections: ec2.Connections;
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  readonly targetGroup: elbv2.ApplicationTargetGroup;
  readonly nodes: readonly ClusterNode[];
  readonly group: NodeGroup;

  constructor(scope: Construct, id: string, props: WebTierProps) {
    super(scope, id);
    const nodeCount = props.nodeCount ?? 2;
    if (!Number.isInteger(nodeCount) || nodeCount < 1) {
      throw new Error(`WebTier: nodeCount must be a positive integer; got ${nodeCount}`);
    }
    const securityGroup = nodeSecurityGroup(
      this,
      props.vpc,
      `${props.clusterName} PEM web instances`,
    );
    this.connections = new ec2.Connections({
      securityGroups: [securityGroup],
      defaultPort: ec2.Port.tcp(PEM_WEB_PORT),
    });
    this.group = new NodeGroup(this, 'Nodes', {
      clusterName: props.clusterName,
      tier: 'web',
      vpc: props.vpc,
      subnets: props.subnets,
      nodeCount,
      instanceType: props.instanceType ?? new ec2.InstanceType('t3.medium'),
      amiFamily: props.amiFamily,
      amiId: props.amiId,
      securityGroup,
      encryptionKey: props.encryptionKey,
      terminationProtection: true,
    });
    this.nodes = this.group.nodes;

    const albSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: props.vpc,
      description: `${props.clusterName} PEM web load balancer`,
      allowAllOutbound: false,
    });
    this.loadBalancer = new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: props.vpc,
      internetFacing: props.internetFacing ?? false,
      vpcSubnets: props.internetFacing
        ? { subnetType: ec2.SubnetType.PUBLIC }
        : { subnets: [...props.subnets] },
      securityGroup: albSecurityGroup,
      dropInvalidHeaderFields: true,
      deletionProtection: true,
    });
    this.enableAccessLogs();
    // Instance targets carry no connections of their own: admit the ALB's
    // traffic and health checks explicitly (egress from its group, ingress here).
    this.loadBalancer.connections.allowTo(
      this.connections,
      ec2.Port.tcp(PEM_WEB_PORT),
      'PEM web traffic and health checks from the ALB',
    );

    this.targetGroup = new elbv2.ApplicationTargetGroup(this, 'Targets', {
      vpc: props.vpc,
      port: PEM_WEB_PORT,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      targetType: elbv2.TargetType.INSTANCE,
      targets: this.nodes.map((node) => new targets.InstanceTarget(node.instance, PEM_WEB_PORT)),
      stickinessCookieDuration: props.stickinessDuration ?? Duration.days(1),
      deregistrationDelay: Duration.seconds(30),
      healthCheck: {
        protocol: elbv2.Protocol.HTTPS,
        path: PEM_HEALTH_CHECK_PATH,
        healthyHttpCodes: '200',
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 3,
      },
    });
    const certificate = props.certificateArn
      ? elbv2.ListenerCertificate.fromArn(props.certificateArn)
      : new SelfSignedWebCertificate(this, 'SelfSignedCertificate', {
          dnsName: this.loadBalancer.loadBalancerDnsName,
        }).certificate;
    this.loadBalancer.addListener('Https', {
      port: WEB_LISTENER_PORT,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
      certificates: [certificate],
      defaultTargetGroups: [this.targetGroup],
      open: false,
    });
  }

  /** Admits browsers from `peer` to the web UI (HTTPS 443 on the ALB). */
  allowBrowsersFrom(peer: ec2.IPeer, description: string): void {
    this.loadBalancer.connections.allowFrom(peer, ec2.Port.tcp(WEB_LISTENER_PORT), description);
  }

  /** `https://<alb dns name>/pem`. */
  get url(): string {
    return `https://${this.loadBalancer.loadBalancerDnsName}/pem`;
  }

  /** Healthy web instances behind the ALB. */
  metricHealthyHosts(options?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.targetGroup.metrics.healthyHostCount({ statistic: 'Minimum', ...options });
  }

  /**
   * ALB access logs to a private bucket. `logAccessLogs` needs a concrete
   * region; an environment-agnostic template names the log writer per region
   * instead: the regional ELB account from CDK's fact table in older regions,
   * the log-delivery service principal in regions opened since August 2022.
   */
  private enableAccessLogs(): void {
    const stack = Stack.of(this);
    if (!Token.isUnresolved(stack.region)) {
      this.loadBalancer.logAccessLogs(this.accessLogBucket());
      return;
    }
    const bucket = this.accessLogBucket();
    const objects = bucket.arnForObjects(`AWSLogs/${stack.account}/*`);
    const elbAccount = stack.regionalFact(FactName.ELBV2_ACCOUNT, 'none');
    const regionHasElbAccount = new CfnCondition(this, 'RegionHasElbAccount', {
      expression: Fn.conditionNot(Fn.conditionEquals(elbAccount, 'none')),
    });
    const writer = Fn.conditionIf(
      regionHasElbAccount.logicalId,
      { AWS: `arn:${stack.partition}:iam::${elbAccount}:root` },
      { Service: 'logdelivery.elasticloadbalancing.amazonaws.com' },
    );
    bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObject'],
        principals: [new iam.ArnPrincipal('*')],
        resources: [objects],
      }),
    );
    // The principal depends on the region, known only at deploy: patch it into the statement above.
    const policy = bucket.policy!;
    (policy.node.defaultChild as CfnResource).addPropertyOverride(
      `PolicyDocument.Statement.${policy.document.statementCount - 1}.Principal`,
      writer,
    );
    this.loadBalancer.setAttribute('access_logs.s3.enabled', 'true');
    this.loadBalancer.setAttribute('access_logs.s3.bucket', bucket.bucketName);
    this.loadBalancer.node.addDependency(policy);
  }

  private accessLogBucket(): s3.Bucket {
    const bucket = new s3.Bucket(this, 'AccessLogs', {
      // ALB access logs support SSE-S3 only.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [{ expiration: Duration.days(365) }],
    });
    Validations.of(bucket).acknowledge({
      id: 'AwsSolutions::AwsSolutions-S1',
      reason:
        'This bucket holds the ALB access logs themselves; server access logs for it would need yet another log bucket. Reads of it are visible in CloudTrail.',
    });
    return bucket;
  }
}
