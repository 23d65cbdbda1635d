import { Aws, CfnCondition, Duration, Fn, Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { FactName } from 'aws-cdk-lib/region-info';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as targets from 'aws-cdk-lib/aws-elasticloadbalancingv2-targets';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { accessLogBucket } from './access-log-bucket';
import { SelfSignedWebCertificate } from './web-certificate';
import { NodeTier, type FixedAddressPlacementProps } from './node-tier';

export const PEM_WEB_PORT = 8443;
/**
 * Web hosts sit at fixed addresses (.30 and up in their subnets), as the other
 * tiers do: the backends admit `pemsuper` from these /32s only, and a replaced
 * instance comes back at the same one.
 */
const WEB_ADDRESS_OFFSET = 30;
export const WEB_LISTENER_PORT = 443;
/** PEM's login page answers 200 once the web application and its backend connection are up. */
export const PEM_HEALTH_CHECK_PATH = '/pem/login';

export interface WebTierProps extends FixedAddressPlacementProps {
  /** @default 2 */
  readonly nodeCount?: number;
  /** @default t3.medium */
  readonly instanceType?: ec2.InstanceType;
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
export class WebTier extends NodeTier {
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  readonly targetGroup: elbv2.ApplicationTargetGroup;

  constructor(scope: Construct, id: string, props: WebTierProps) {
    // `connections` are the instances' (they reach the backend as clients).
    super(scope, id, props, {
      tier: 'web',
      description: 'PEM web instances',
      defaultPort: PEM_WEB_PORT,
      defaultNodeCount: 2,
      minNodeCount: 1,
      defaultInstanceType: 't3.medium',
      addressOffset: WEB_ADDRESS_OFFSET,
    });

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
    // Both principal kinds behind the condition: CloudFormation drops the one
    // that does not apply (AWS::NoValue), leaving exactly one writer.
    const writers = [
      new iam.ArnPrincipal(
        Fn.conditionIf(
          regionHasElbAccount.logicalId,
          `arn:${stack.partition}:iam::${elbAccount}:root`,
          Aws.NO_VALUE,
        ).toString(),
      ),
      new iam.ServicePrincipal(
        Fn.conditionIf(
          regionHasElbAccount.logicalId,
          Aws.NO_VALUE,
          'logdelivery.elasticloadbalancing.amazonaws.com',
        ).toString(),
      ),
    ];
    const { policyDependable: policy } = bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObject'],
        principals: writers,
        resources: [objects],
      }),
    );
    this.loadBalancer.setAttribute('access_logs.s3.enabled', 'true');
    this.loadBalancer.setAttribute('access_logs.s3.bucket', bucket.bucketName);
    if (policy) this.loadBalancer.node.addDependency(policy);
  }

  private accessLogBucket(): s3.Bucket {
    return accessLogBucket(
      this,
      'AccessLogs',
      'This bucket holds the ALB access logs themselves; server access logs for it would need yet another log bucket. Reads of it are visible in CloudTrail.',
    );
  }
}
