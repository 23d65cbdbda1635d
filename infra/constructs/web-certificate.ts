import * as path from 'node:path';
import { CustomResource, Duration, Stack, Token, Validations } from 'aws-cdk-lib';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';

/** Must match functions/web-certificate/certificate.ts (functions/ cannot be imported here). */
const MAX_DNS_NAME_LENGTH = 253;
const MAX_COMMON_NAME_LENGTH = 64;
const DEFAULT_COMMON_NAME = 'pem-ha web';
const DNS_NAME = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$/;
const MAX_VALIDITY_DAYS = 825;
const MANAGED_BY = { key: 'ManagedBy', value: 'pem-ha' } as const;

export interface SelfSignedWebCertificateProps {
  /**
   * DNS name the certificate is issued for: always its only DNS SAN (what clients match on),
   * and its subject CN when it is at most 64 characters. Usually the ALB's
   * `loadBalancerDnsName` token; it must resolve to a DNS name of at most 253 characters.
   */
  readonly dnsName: string;
  /**
   * Subject CN used instead of `dnsName` when the DNS name is longer than 64 characters (the
   * X.520 CN limit), as internal ALB names often are. 1 to 64 characters.
   * @default 'pem-ha web'
   */
  readonly commonName?: string;
  /**
   * How long the certificate is valid, in days (1 to 825).
   * @default 397
   */
  readonly validityDays?: number;
}

/**
 * A self-signed ECDSA P-256 certificate imported into ACM, for the web tier's internal ALB when
 * the user gave no certificate ARN. A custom resource issues it at deploy time, so the private
 * key never appears in the template, the CloudFormation response or the logs.
 */
export class SelfSignedWebCertificate extends Construct {
  /** The certificate, for an HTTPS listener's `certificates`. */
  readonly certificate: elbv2.IListenerCertificate;
  readonly certificateArn: string;

  constructor(scope: Construct, id: string, props: SelfSignedWebCertificateProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const validityDays = props.validityDays ?? 397;
    const commonName = props.commonName ?? DEFAULT_COMMON_NAME;
    validate(props.dnsName, commonName, validityDays);

    const logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: logs.RetentionDays.ONE_YEAR,
    });
    // An explicit role: no managed policy, log writes only to this function's log group.
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    });
    logGroup.grantWrite(role);
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ImportTaggedCertificate',
        actions: ['acm:ImportCertificate', 'acm:AddTagsToCertificate'],
        // A new certificate's ARN is unknown until it is imported.
        resources: ['*'],
        conditions: { StringEquals: { [`aws:RequestTag/${MANAGED_BY.key}`]: MANAGED_BY.value } },
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DeleteOwnCertificates',
        actions: ['acm:DeleteCertificate'],
        resources: [
          stack.formatArn({ service: 'acm', resource: 'certificate', resourceName: '*' }),
        ],
        conditions: { StringEquals: { [`aws:ResourceTag/${MANAGED_BY.key}`]: MANAGED_BY.value } },
      }),
    );

    const onEvent = new nodejs.NodejsFunction(this, 'Function', {
      description: 'pem-ha: issues the self-signed default certificate of the web ALB',
      entry: path.join(__dirname, '..', '..', 'functions', 'web-certificate', 'handler.ts'),
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      timeout: Duration.seconds(30),
      role,
      logGroup,
      environment: { NODE_OPTIONS: '--enable-source-maps' },
      bundling: {
        minify: true,
        sourceMap: true,
        // target defaults to the runtime's Node version; the runtime ships the AWS SDK v3.
        externalModules: ['@aws-sdk/*'],
      },
    });

    const provider = new cr.Provider(this, 'Provider', {
      onEventHandler: onEvent,
      logGroup: new logs.LogGroup(this, 'ProviderLogGroup', {
        retention: logs.RetentionDays.ONE_YEAR,
      }),
    });

    const resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::PemHaSelfSignedCertificate',
      properties: { DnsName: props.dnsName, CommonName: commonName, ValidityDays: validityDays },
    });
    this.certificateArn = resource.getAttString('CertificateArn');
    this.certificate = elbv2.ListenerCertificate.fromArn(this.certificateArn);

    const fnLogicalId = stack.getLogicalId(onEvent.node.defaultChild as lambda.CfnFunction);
    Validations.of(role).acknowledge(
      {
        id: 'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
        reason:
          'ImportCertificate creates a certificate whose ARN is unknown before the call; the ' +
          'statement only allows requests that tag it ManagedBy=pem-ha.',
      },
      {
        // cdk-nag names the finding by the ARN as synthesized: literal region/account when known.
        id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:acm:${
          Token.isUnresolved(stack.region) ? '<AWS::Region>' : stack.region
        }:${Token.isUnresolved(stack.account) ? '<AWS::AccountId>' : stack.account}:certificate/*]`,
        reason: 'DeleteCertificate is limited to certificates tagged ManagedBy=pem-ha.',
      },
    );
    Validations.of(provider).acknowledge(
      {
        id: 'AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: "The CDK Provider framework's own function role writes its logs with this policy.",
      },
      {
        id: `AwsSolutions::AwsSolutions-IAM5[Resource::<${fnLogicalId}.Arn>:*]`,
        reason: 'The CDK Provider framework may invoke any version of the onEvent function.',
      },
    );
  }
}

function validate(dnsName: string, commonName: string, validityDays: number): void {
  if (
    !Token.isUnresolved(dnsName) &&
    !(dnsName.length > 0 && dnsName.length <= MAX_DNS_NAME_LENGTH && DNS_NAME.test(dnsName))
  ) {
    throw new Error(
      `SelfSignedWebCertificate dnsName must be a DNS name of 1 to ${MAX_DNS_NAME_LENGTH} ` +
        "characters (letters, digits, '-' and '.', labels of at most 63); " +
        `given ${JSON.stringify(dnsName)} (${dnsName.length} characters)`,
    );
  }
  if (
    !Token.isUnresolved(commonName) &&
    !(commonName.length > 0 && commonName.length <= MAX_COMMON_NAME_LENGTH)
  ) {
    throw new Error(
      `SelfSignedWebCertificate commonName must be 1 to ${MAX_COMMON_NAME_LENGTH} characters; ` +
        `given ${JSON.stringify(commonName)} (${commonName.length} characters)`,
    );
  }
  if (
    !Token.isUnresolved(validityDays) &&
    !(Number.isInteger(validityDays) && validityDays >= 1 && validityDays <= MAX_VALIDITY_DAYS)
  ) {
    throw new Error(
      `SelfSignedWebCertificate validityDays must be an integer from 1 to ${MAX_VALIDITY_DAYS}; ` +
        `given ${validityDays}`,
    );
  }
}
