import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { RIG_ONLY_ALLOW_PATRONI_302 } from '../../infra/config/load-config';
import { resourcesOf, synthStack } from '../helpers/synth';

type Statement = { Action: string | string[]; Resource: unknown };

/** GetSecretValue resources granted to the instance role of one tier. */
function secretsReadableBy(
  template: ReturnType<typeof synthStack>['template'],
  tier: string,
): string[] {
  const roleId = Object.entries(resourcesOf(template, 'AWS::IAM::Role')).find(([id]) =>
    id.startsWith(`${tier}NodesRole`),
  )?.[0];
  expect(roleId).toBeDefined();
  const policies = Object.values(resourcesOf(template, 'AWS::IAM::Policy')).filter((policy) =>
    JSON.stringify(policy.Properties.Roles).includes(roleId!),
  );
  return policies
    .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement)
    .filter((statement) => [statement.Action].flat().includes('secretsmanager:GetSecretValue'))
    .flatMap((statement) => [statement.Resource].flat())
    .map((resource) => JSON.stringify(resource))
    .sort();
}

describe('secrets and keys', () => {
  const { template } = synthStack();

  it('generates every credential in Secrets Manager under a rotating KMS key', () => {
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    const secrets = Object.values(resourcesOf(template, 'AWS::SecretsManager::Secret'))
      .map((s) => s.Properties)
      .filter((s) => !String(s.Name).includes('/pki/'));
    expect(secrets.map((s) => s.Name).sort()).toEqual(
      [
        'patroniEtcd',
        'patroniReplication',
        'patroniRestApi',
        'patroniRewind',
        'patroniSuperuser',
        'pemSuperuser',
      ].map((purpose) => `pem-ha/${purpose}`),
    );
    for (const secret of secrets) {
      expect(secret.KmsKeyId).toBeDefined();
      expect(secret.SecretString).toBeUndefined();
      expect(secret.GenerateSecretString).toMatchObject({ GenerateStringKey: 'password' });
    }
  });

  it('keeps the cluster CA in three secrets that start empty and that no node can read', () => {
    const pki = Object.values(resourcesOf(template, 'AWS::SecretsManager::Secret'))
      .map((s) => s.Properties)
      .filter((s) => String(s.Name).includes('/pki/'));
    expect(pki.map((s) => [s.Name, s.SecretString])).toEqual([
      ['pem-ha/pki/root', '{}'],
      ['pem-ha/pki/intermediate', '{}'],
      ['pem-ha/pki/trust', '{}'],
    ]);
    for (const tier of ['Etcd', 'Backend', 'Web']) {
      expect(secretsReadableBy(template, tier).filter((arn) => arn.includes('Pki'))).toEqual([]);
    }
  });

  it('lets each tier read only the secrets it uses', () => {
    const backend = secretsReadableBy(template, 'Backend');
    expect(backend).toHaveLength(7);
    for (const purpose of ['Superuser', 'Replication', 'Rewind', 'RestApi', 'Etcd']) {
      expect(backend.some((resource) => resource.includes(`Secretspatroni${purpose}`))).toBe(true);
    }
    expect(backend.some((resource) => resource.includes('SecretspemSuperuser'))).toBe(true);
    expect(
      backend.some((resource) => resource.includes(':secret:pem-ha/edb-repo-token-??????')),
    ).toBe(true);

    const web = secretsReadableBy(template, 'Web');
    expect(web).toHaveLength(2);
    expect(web.some((resource) => resource.includes('SecretspemSuperuser'))).toBe(true);
    expect(web.some((resource) => resource.includes('edb-repo-token'))).toBe(true);

    // etcd members read Patroni's etcd login only: the first makes the etcd user with it
    const etcd = secretsReadableBy(template, 'Etcd');
    expect(etcd).toHaveLength(1);
    expect(etcd[0]).toContain('SecretspatroniEtcd');
  });

  it('outputs secret names but never a secret value', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs.PatroniSuperuserSecretName.Value).toBe('pem-ha/patroniSuperuser');
    expect(JSON.stringify(outputs)).not.toMatch(/SecretString|resolve:secretsmanager|password/i);
  });
});

describe('endpoints a user connects to', () => {
  it('outputs write, read, web and a multi-host connection string of every backend', () => {
    const { template } = synthStack();
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(JSON.stringify(outputs.WriteEndpoint.Value)).toContain(':5432');
    expect(JSON.stringify(outputs.ReadEndpoint.Value)).toContain(':5433');
    expect(JSON.stringify(outputs.WebUrl.Value)).toContain('https://');
    const hosts = String(outputs.MultiHostConnectionString.Value).match(
      /^postgresql:\/\/([^/]+)\//,
    )?.[1];
    expect(hosts?.split(',')).toEqual(['10.40.3.20:5432', '10.40.4.20:5432', '10.40.5.20:5432']);
    expect(outputs.MultiHostConnectionString.Value).toContain('target_session_attrs=read-write');
    // Clients verify: the roots from the parameter the CA function writes
    expect(outputs.MultiHostConnectionString.Value).toContain(
      'sslmode=verify-full&sslrootcert=pem-ha-root.crt',
    );
    expect(outputs.RootCertificatesParameter.Value).toBe('/pem-ha/pki/root-certificates');
  });

  it("puts the NLB's DNS name in the backends' PostgreSQL certificates: the signer entitles it and the node requests it", () => {
    const { template } = synthStack();
    const [nlb] = Object.keys(
      template.findResources('AWS::ElasticLoadBalancingV2::LoadBalancer', {
        Properties: { Type: 'network' },
      }),
    );
    const dnsName = { 'Fn::GetAtt': [nlb, 'DNSName'] };
    type Fn = { Properties: { Environment?: { Variables?: Record<string, unknown> } } };
    const signers = Object.values(
      template.findResources('AWS::Lambda::Function') as Record<string, Fn>,
    )
      .map((f) => f.Properties.Environment?.Variables?.DATABASE_ENDPOINT_NAME)
      .filter(Boolean);
    expect(signers).toEqual([dnsName]);
    type Doc = { Properties: { Content: { parameters: Record<string, { default?: unknown }> } } };
    const [certificates] = Object.values(
      template.findResources('AWS::SSM::Document', {
        Properties: { Name: 'pem-ha-certificates' },
      }) as Record<string, Doc>,
    );
    expect(certificates.Properties.Content.parameters.DatabaseEndpointName.default).toEqual(
      dnsName,
    );
  });

  it('places every node at a fixed address, one per AZ subnet: etcd .10, backends .20, web hosts .30', () => {
    const { template } = synthStack({ etcdNodeCount: '5' });
    const addresses = Object.values(resourcesOf(template, 'AWS::EC2::Instance'))
      .map((instance) => instance.Properties.PrivateIpAddress)
      .sort();
    expect(addresses).toEqual(
      [
        '10.40.3.10',
        '10.40.3.11',
        '10.40.4.10',
        '10.40.4.11',
        '10.40.5.10',
        '10.40.3.20',
        '10.40.4.20',
        '10.40.5.20',
        '10.40.3.30',
        '10.40.4.30',
      ].sort(),
    );
  });
});

describe('web tier', () => {
  it('serves HTTPS 443 on an internal ALB to HTTPS 8443 with sticky sessions and a PEM login health check', () => {
    const { template } = synthStack();
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Type: 'application',
      Scheme: 'internal',
    });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 443,
      Protocol: 'HTTPS',
      Certificates: [{ CertificateArn: { 'Fn::GetAtt': [Match.anyValue(), 'CertificateArn'] } }],
    });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      Port: 8443,
      Protocol: 'HTTPS',
      HealthCheckPath: '/pem/login',
      TargetGroupAttributes: Match.arrayWith([
        { Key: 'stickiness.enabled', Value: 'true' },
        { Key: 'stickiness.type', Value: 'lb_cookie' },
      ]),
    });
  });

  it('uses the given ACM certificate instead of issuing one', () => {
    const arn =
      'arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012';
    const { template } = synthStack({ webCertificateArn: arn });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 443,
      Certificates: [{ CertificateArn: arn }],
    });
    template.resourceCountIs('Custom::PemHaSelfSignedCertificate', 0);
  });

  it('is left out with its secrets when PEM is disabled', () => {
    const { template } = synthStack({ pemEnabled: 'false' });
    template.resourcePropertiesCountIs(
      'AWS::ElasticLoadBalancingV2::LoadBalancer',
      { Type: 'application' },
      0,
    );
    expect(Object.keys(template.toJSON().Outputs)).not.toContain('WebUrl');
    expect(JSON.stringify(template.toJSON())).not.toMatch(/pemSuperuser|edb-repo-token/);
    template.resourceCountIs('AWS::EC2::Instance', 6);
  });
});

describe('network', () => {
  it('creates a VPC over three AZs with endpoints for SSM, secrets, logs, KMS and metrics, and flow logs', () => {
    const { template } = synthStack();
    template.resourceCountIs('AWS::EC2::VPC', 1);
    template.resourcePropertiesCountIs('AWS::EC2::Subnet', { MapPublicIpOnLaunch: false }, 3);
    const services = Object.values(resourcesOf(template, 'AWS::EC2::VPCEndpoint')).map((endpoint) =>
      JSON.stringify(endpoint.Properties.ServiceName).replace(/.*\.([a-z0-9]+)"?\]?\]?\}?$/, '$1'),
    );
    expect(services.sort()).toEqual([
      'ec2messages',
      'kms',
      'logs',
      'monitoring',
      's3',
      'secretsmanager',
      'ssm',
      'ssmmessages',
    ]);
    template.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'ALL' });
  });

  it('uses an imported VPC as described, placing fixed addresses in its subnets', () => {
    const { template } = synthStack({
      vpcId: 'vpc-0123456789abcdef0',
      availabilityZones: 'eu-west-1a,eu-west-1b,eu-west-1c',
      vpcPrivateSubnetIds: 'subnet-0000000a,subnet-0000000b,subnet-0000000c',
      vpcPrivateSubnetCidrs: '172.20.0.0/24,172.20.1.0/24,172.20.2.0/24',
    });
    template.resourceCountIs('AWS::EC2::VPC', 0);
    template.hasResourceProperties('AWS::EC2::Instance', {
      SubnetId: 'subnet-0000000b',
      PrivateIpAddress: '172.20.1.10',
    });
  });
});

describe('machine images', () => {
  const imageParameters = (settings: Record<string, unknown>) =>
    Object.values(
      synthStack(settings).template.toJSON().Parameters as Record<string, { Default?: string }>,
    )
      .map((parameter) => parameter.Default)
      .filter((value): value is string => Boolean(value?.startsWith('/aws/service/')))
      .sort();

  it('resolves Ubuntu 24.04 from its public SSM parameter by default, per architecture', () => {
    expect(imageParameters({ backendInstanceType: 'm7g.large' })).toEqual([
      '/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id',
      '/aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/ebs-gp3/ami-id',
    ]);
  });

  it.each([
    ['debian-12', '/aws/service/debian/release/12/latest/amd64'],
    ['debian-13', '/aws/service/debian/release/13/latest/amd64'],
  ])("resolves %s from Debian's public parameter when asked", (amiFamily, parameter) => {
    expect(imageParameters({ amiFamily })).toEqual([parameter]);
  });

  it('with an account and region, looks the image up once and keeps it in the context, so a newer image replaces nothing', () => {
    const key =
      'ssm:account=123456789012:parameterName=/aws/service/debian/release/13/latest/amd64:region=eu-west-1';
    const { template, stack } = synthStack({
      account: '123456789012',
      region: 'eu-west-1',
      amiFamily: 'debian-13',
      [key]: 'ami-0aaaabbbbccccdddd',
    });
    expect(imageParametersOf(template)).toEqual([]);
    template.allResourcesProperties('AWS::EC2::Instance', { ImageId: 'ami-0aaaabbbbccccdddd' });
    Annotations.fromStack(stack).hasNoWarning('*', Match.stringLikeRegexp('No amiId'));
  });

  it('without amiId, account or region, warns that every deploy resolves the newest image', () => {
    const { stack } = synthStack();
    Annotations.fromStack(stack).hasWarning(
      '*',
      Match.stringLikeRegexp('a newer one replaces every node at once'),
    );
  });

  it('pins every node to a given AMI without any lookup', () => {
    const { template } = synthStack({ amiId: 'ami-0123456789abcdef0' });
    expect(imageParametersOf(template)).toEqual([]);
    template.hasParameter('PinnedAmiId', {
      Type: 'AWS::EC2::Image::Id',
      Default: 'ami-0123456789abcdef0',
    });
    template.allResourcesProperties('AWS::EC2::Instance', { ImageId: { Ref: 'PinnedAmiId' } });
  });
});

function imageParametersOf(template: ReturnType<typeof synthStack>['template']): string[] {
  return Object.values((template.toJSON().Parameters ?? {}) as Record<string, { Default?: string }>)
    .map((parameter) => parameter.Default ?? '')
    .filter((value) => value.startsWith('/aws/service/'));
}

describe('package source warnings', () => {
  it("warns never to deploy the template the rig's Debian 12 suite synthesizes with Patroni 3.0.2", () => {
    const { stack } = synthStack({
      amiFamily: 'debian-12',
      postgresPackageSource: 'os',
      postgresMajorVersion: 15,
      [RIG_ONLY_ALLOW_PATRONI_302]: 'true',
    });
    Annotations.fromStack(stack).hasWarning(
      '*',
      Match.stringLikeRegexp("Debian 12's own Patroni 3.0.2 can lose acknowledged writes"),
    );
  });

  it('does not warn with PGDG packages or on Debian 13', () => {
    for (const settings of [
      { amiFamily: 'debian-12' },
      { amiFamily: 'debian-13', postgresPackageSource: 'os' },
    ]) {
      const { stack } = synthStack(settings);
      Annotations.fromStack(stack).hasNoWarning('*', Match.stringLikeRegexp('Patroni 3.0.2'));
    }
  });

  it("warns that the operating system's own Patroni can demote the primary on an etcd leader change, and says nothing of it with PGDG packages", () => {
    const warning = Match.stringLikeRegexp(
      'own Patroni 4.0.7, which misreads the errors etcd returns while its leader changes.*use postgresPackageSource pgdg',
    );
    const { stack: debian } = synthStack({ amiFamily: 'debian-13', postgresPackageSource: 'os' });
    Annotations.fromStack(debian).hasWarning('*', warning);
    const { stack: pgdg } = synthStack({ amiFamily: 'debian-13' });
    Annotations.fromStack(pgdg).hasNoWarning(
      '*',
      Match.stringLikeRegexp('misreads the errors etcd'),
    );
  });
});
