import { CustomResource, Duration, Stack, Token, Validations } from 'aws-cdk-lib';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import * as limits from '../../functions/lib/web-certificate-limits';
import { ValidationError } from './errors';
import { acknowledgeProvider, arnOf } from './nag';
import { TaskFunction } from './task-function';

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
    const commonName = props.commonName ?? limits.DEFAULT_COMMON_NAME;
    validate(this, props.dnsName, commonName, validityDays);

    // Id 'Default' is left out of logical IDs: the issuer's log group, role
    // and function keep the IDs they had before it became a TaskFunction.
    const issuer = new TaskFunction(this, 'Default', {
      handlerFolder: 'web-certificate',
      description: 'pem-ha: issues the self-signed default certificate of the web ALB',
      timeout: Duration.seconds(30),
    });
    issuer.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ImportTaggedCertificate',
        actions: ['acm:ImportCertificate', 'acm:AddTagsToCertificate'],
        // A new certificate's ARN is unknown until it is imported.
        resources: ['*'],
        conditions: {
          StringEquals: {
            [`aws:RequestTag/${limits.MANAGED_BY_TAG.Key}`]: limits.MANAGED_BY_TAG.Value,
          },
        },
      }),
    );
    issuer.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DeleteOwnCertificates',
        actions: ['acm:DeleteCertificate'],
        resources: [
          stack.formatArn({ service: 'acm', resource: 'certificate', resourceName: '*' }),
        ],
        conditions: {
          StringEquals: {
            [`aws:ResourceTag/${limits.MANAGED_BY_TAG.Key}`]: limits.MANAGED_BY_TAG.Value,
          },
        },
      }),
    );

    const provider = new cr.Provider(this, 'Provider', {
      onEventHandler: issuer.function,
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

    // With two children ('Default', 'Resource') the default child must be named.
    this.node.defaultChild = resource;

    Validations.of(issuer.role).acknowledge(
      {
        id: 'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
        reason:
          'ImportCertificate creates a certificate whose ARN is unknown before the call; the ' +
          'statement only allows requests that tag it ManagedBy=pem-ha.',
      },
      {
        id: `AwsSolutions::AwsSolutions-IAM5[Resource::${arnOf(this, 'acm', 'certificate/*')}]`,
        reason: 'DeleteCertificate is limited to certificates tagged ManagedBy=pem-ha.',
      },
    );
    acknowledgeProvider(provider, [issuer]);
  }
}

function validate(
  scope: Construct,
  dnsName: string,
  commonName: string,
  validityDays: number,
): void {
  if (
    !Token.isUnresolved(dnsName) &&
    !(
      dnsName.length > 0 &&
      dnsName.length <= limits.MAX_DNS_NAME_LENGTH &&
      limits.DNS_NAME.test(dnsName)
    )
  ) {
    throw new ValidationError(
      scope,
      `dnsName must be a DNS name of 1 to ${limits.MAX_DNS_NAME_LENGTH} ` +
        "characters (letters, digits, '-' and '.', labels of at most 63); " +
        `given ${JSON.stringify(dnsName)} (${dnsName.length} characters)`,
    );
  }
  if (
    !Token.isUnresolved(commonName) &&
    !(commonName.length > 0 && commonName.length <= limits.MAX_COMMON_NAME_LENGTH)
  ) {
    throw new ValidationError(
      scope,
      `commonName must be 1 to ${limits.MAX_COMMON_NAME_LENGTH} characters; ` +
        `given ${JSON.stringify(commonName)} (${commonName.length} characters)`,
    );
  }
  if (
    !Token.isUnresolved(validityDays) &&
    !(
      Number.isInteger(validityDays) &&
      validityDays >= limits.MIN_VALIDITY_DAYS &&
      validityDays <= limits.MAX_VALIDITY_DAYS
    )
  ) {
    throw new ValidationError(
      scope,
      `validityDays must be an integer from ${limits.MIN_VALIDITY_DAYS} to ${limits.MAX_VALIDITY_DAYS}; ` +
        `given ${validityDays}`,
    );
  }
}
