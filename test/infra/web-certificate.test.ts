import { App, Fn, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { AwsSolutionsChecks } from 'cdk-nag';
import {
  SelfSignedWebCertificate,
  type SelfSignedWebCertificateProps,
} from '../../infra/constructs/web-certificate';
import { cdkOutdir } from '../helpers/cdk-out';

interface Statement {
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, string>>;
}

// Skip esbuild bundling: these tests read the template, not the Lambda bundle.
const newApp = () => new App({ outdir: cdkOutdir(), context: { 'aws:cdk:bundling-stacks': [] } });

function synth(props: Partial<SelfSignedWebCertificateProps> = {}) {
  const stack = new Stack(newApp(), 'Test');
  const cert = new SelfSignedWebCertificate(stack, 'WebCertificate', {
    dnsName: Fn.importValue('WebAlbDnsName'),
    ...props,
  });
  return { stack, cert, template: Template.fromStack(stack) };
}

function statements(template: Template): Statement[] {
  return Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
    (policy) => policy.Properties.PolicyDocument.Statement as Statement[],
  );
}

const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);

describe('SelfSignedWebCertificate', () => {
  it('runs the issuer on Node.js 22 or newer, arm64, with bounded time and memory', () => {
    // Given the construct with default props
    const { template } = synth();

    // Then every Lambda function (issuer and provider framework) is on nodejs22.x or newer
    const functions = Object.values(template.findResources('AWS::Lambda::Function'));
    expect(functions).toHaveLength(2);
    for (const fn of functions) {
      const major = /^nodejs(\d+)\.x$/.exec(fn.Properties.Runtime)?.[1];
      expect(Number(major)).toBeGreaterThanOrEqual(22);
    }
    // And the issuer itself is sized as designed
    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Architectures: ['arm64'],
      Timeout: 30,
      MemorySize: 256,
      LoggingConfig: { LogGroup: Match.anyValue() },
    });
  });

  it('keeps the logs of both functions for one year', () => {
    const { template } = synth();

    const groups = Object.values(template.findResources('AWS::Logs::LogGroup'));
    expect(groups).toHaveLength(2);
    for (const group of groups) expect(group.Properties.RetentionInDays).toBe(365);
  });

  it('passes DnsName, the default CommonName and validity of 397 days to the custom resource', () => {
    const { template } = synth();

    template.hasResourceProperties('Custom::PemHaSelfSignedCertificate', {
      DnsName: { 'Fn::ImportValue': 'WebAlbDnsName' },
      CommonName: 'pem-ha web',
      ValidityDays: 397,
    });
  });

  it('accepts a literal ALB DNS name longer than 64 characters, with a custom CommonName', () => {
    // Given a realistic internal ALB name too long to be a certificate CN
    const dnsName =
      'internal-pem-ha-prod-web-loadbalancer-1234567890.ap-southeast-2.elb.amazonaws.com';
    expect(dnsName.length).toBeGreaterThan(70);

    // When the construct is created for it
    const { template } = synth({ dnsName, commonName: 'web.pem-ha' });

    // Then both names reach the custom resource unchanged
    template.hasResourceProperties('Custom::PemHaSelfSignedCertificate', {
      DnsName: dnsName,
      CommonName: 'web.pem-ha',
    });
  });

  it('accepts a CommonName token without checking it at synthesis', () => {
    // Given a CommonName known only at deploy time
    const commonName = Fn.importValue('WebCommonName');

    // When the construct is created, Then the token is passed through
    const { template } = synth({ commonName });
    template.hasResourceProperties('Custom::PemHaSelfSignedCertificate', {
      CommonName: { 'Fn::ImportValue': 'WebCommonName' },
    });
  });

  it('lets the issuer delete only certificates tagged ManagedBy=pem-ha', () => {
    // Given the synthesized policies
    const all = statements(synth().template);

    // Then every statement allowing acm:DeleteCertificate is scoped by the ownership tag
    const deletes = all.filter((s) => actionsOf(s).includes('acm:DeleteCertificate'));
    expect(deletes).toHaveLength(1);
    expect(deletes[0]!.Condition).toEqual({
      StringEquals: { 'aws:ResourceTag/ManagedBy': 'pem-ha' },
    });
    expect(JSON.stringify(deletes[0]!.Resource)).toContain(':certificate/*');
  });

  it('lets the issuer import only certificates it tags ManagedBy=pem-ha', () => {
    const all = statements(synth().template);

    const imports = all.filter((s) => actionsOf(s).includes('acm:ImportCertificate'));
    expect(imports).toHaveLength(1);
    expect(actionsOf(imports[0]!).sort()).toEqual([
      'acm:AddTagsToCertificate',
      'acm:ImportCertificate',
    ]);
    expect(imports[0]!.Condition).toEqual({
      StringEquals: { 'aws:RequestTag/ManagedBy': 'pem-ha' },
    });
  });

  it("gives the issuer's role no AWS managed policy", () => {
    // Given the issuer function and its role
    const { template } = synth();
    const [issuer] = Object.values(
      template.findResources('AWS::Lambda::Function', { Properties: { Handler: 'index.handler' } }),
    );
    const roleId = issuer!.Properties.Role['Fn::GetAtt'][0] as string;

    // Then the role carries only the inline policy written for it
    const role = template.findResources('AWS::IAM::Role')[roleId];
    expect(role?.Properties.ManagedPolicyArns).toBeUndefined();
  });

  it("serves as an HTTPS listener's certificate for the ALB whose DNS name it carries", () => {
    // Given an internal ALB and the certificate issued for its DNS name
    const stack = new Stack(newApp(), 'Web');
    const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 0 });
    const alb = new elbv2.ApplicationLoadBalancer(stack, 'Alb', { vpc, internetFacing: false });
    const cert = new SelfSignedWebCertificate(stack, 'WebCertificate', {
      dnsName: alb.loadBalancerDnsName,
    });

    // When an HTTPS listener uses it
    alb.addListener('Https', {
      port: 443,
      certificates: [cert.certificate],
      defaultAction: elbv2.ListenerAction.fixedResponse(503),
    });

    // Then the listener's certificate is the custom resource's CertificateArn
    const template = Template.fromStack(stack);
    const [certificateResource] = Object.keys(
      template.findResources('Custom::PemHaSelfSignedCertificate'),
    );
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Certificates: [{ CertificateArn: { 'Fn::GetAtt': [certificateResource, 'CertificateArn'] } }],
    });
    template.hasResourceProperties('Custom::PemHaSelfSignedCertificate', {
      DnsName: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Alb'), 'DNSName'] },
    });
  });

  it('is clean under cdk-nag AwsSolutions checks', () => {
    // Given an app with the AwsSolutions pack and the construct
    const app = newApp();
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    const stack = new Stack(app, 'Nag');
    new SelfSignedWebCertificate(stack, 'WebCertificate', { dnsName: 'web.example.internal' });

    // When synthesized, Then no finding is left unacknowledged
    expect(() => app.synth()).not.toThrow();
  });

  it.each([
    [{ validityDays: 0 }, /validityDays must be an integer from 1 to 825; given 0$/],
    [{ validityDays: 826 }, /validityDays must be an integer from 1 to 825; given 826$/],
    [{ validityDays: 1.5 }, /validityDays .*given 1\.5$/],
    [
      { dnsName: '' },
      /dnsName must be a DNS name of 1 to 253 characters .*given "" \(0 characters\)$/,
    ],
    [
      { dnsName: ['a'.repeat(63), 'a'.repeat(63), 'a'.repeat(63), 'b'.repeat(62)].join('.') },
      /dnsName must be a DNS name of 1 to 253 .*\(254 characters\)$/,
    ],
    [
      { dnsName: `${'a'.repeat(64)}.example.com` },
      /dnsName .*labels of at most 63\); given "a{64}\.example\.com" \(76 characters\)$/,
    ],
    [{ dnsName: 'not a host' }, /dnsName must be a DNS name .*given "not a host"/],
    [{ commonName: '' }, /commonName must be 1 to 64 characters; given "" \(0 characters\)$/],
    [{ commonName: 'c'.repeat(65) }, /commonName must be 1 to 64 characters; .*\(65 characters\)$/],
  ])('rejects %j with an error naming the prop', (props, message) => {
    // Given a bad prop, When the construct is created, Then it fails before synthesis
    expect(() => synth(props)).toThrow(message);
  });
});
