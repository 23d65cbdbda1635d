import * as path from 'node:path';
import { Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface TaskFunctionProps {
  /** Folder under functions/ holding handler.ts. */
  readonly handlerFolder: string;
  /** Exported function of handler.ts. @default 'handler' */
  readonly handler?: string;
  readonly description: string;
  readonly environment?: Record<string, string>;
  /** @default 60 seconds */
  readonly timeout?: Duration;
  /**
   * Run inside the VPC (to reach nodes directly), egress limited to HTTPS
   * for AWS APIs; grant node ports through `connections`.
   * @default - outside any VPC
   */
  readonly vpc?: { readonly vpc: ec2.IVpc; readonly subnets: ec2.SubnetSelection };
}

/**
 * A pem-ha Lambda: bundled from functions/<folder>/handler.ts, its own log
 * group and an explicit role that may write only there (no managed policy).
 */
export class TaskFunction extends Construct implements iam.IGrantable, ec2.IConnectable {
  readonly function: nodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly grantPrincipal: iam.IPrincipal;
  /** Empty unless the function runs in the VPC. */
  readonly connections: ec2.Connections;

  constructor(scope: Construct, id: string, props: TaskFunctionProps) {
    super(scope, id);
    const logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: logs.RetentionDays.ONE_YEAR,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    });
    this.grantPrincipal = this.role;
    logGroup.grantWrite(this.role);
    let securityGroups: ec2.ISecurityGroup[] | undefined;
    if (props.vpc) {
      const group = new ec2.SecurityGroup(this, 'SecurityGroup', {
        vpc: props.vpc.vpc,
        description: `pem-ha ${props.handlerFolder} function`,
        allowAllOutbound: false,
      });
      group.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS: AWS APIs');
      securityGroups = [group];
      // The network interfaces a VPC function needs, without the broad managed policy.
      this.role.addToPolicy(
        new iam.PolicyStatement({
          actions: [
            'ec2:CreateNetworkInterface',
            'ec2:DescribeNetworkInterfaces',
            'ec2:DeleteNetworkInterface',
            'ec2:AssignPrivateIpAddresses',
            'ec2:UnassignPrivateIpAddresses',
          ],
          resources: ['*'],
        }),
      );
    }
    this.connections = new ec2.Connections({ securityGroups });
    this.function = new nodejs.NodejsFunction(this, 'Function', {
      description: props.description,
      entry: path.join(__dirname, '..', '..', 'functions', props.handlerFolder, 'handler.ts'),
      handler: props.handler ?? 'handler',
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      timeout: props.timeout ?? Duration.seconds(60),
      role: this.role,
      logGroup,
      ...(props.vpc && { vpc: props.vpc.vpc, vpcSubnets: props.vpc.subnets, securityGroups }),
      environment: { NODE_OPTIONS: '--enable-source-maps', ...props.environment },
      bundling: {
        minify: true,
        sourceMap: true,
        // The runtime ships the AWS SDK v3.
        externalModules: ['@aws-sdk/*'],
      },
    });
  }
}
