import { Template } from 'aws-cdk-lib/assertions';
import { groupToGroupFlows, securityGroupRules, securityGroups } from '../../rig/security-groups';
import type { SynthesizedTemplate } from '../../rig/template';
import { resourcesOf, synthStack } from '../helpers/synth';

type Rule = {
  CidrIp?: string;
  FromPort?: number;
  ToPort?: number;
  SourceSecurityGroupId?: unknown;
};

/** Every ingress rule, inline or standalone, with the logical id of the group it opens. */
function ingressRules(template: Template): Array<Rule & { group: string }> {
  const rules: Array<Rule & { group: string }> = [];
  for (const [id, sg] of Object.entries(resourcesOf(template, 'AWS::EC2::SecurityGroup'))) {
    for (const rule of (sg.Properties.SecurityGroupIngress as Rule[] | undefined) ?? []) {
      rules.push({ ...rule, group: id });
    }
  }
  for (const ingress of Object.values(resourcesOf(template, 'AWS::EC2::SecurityGroupIngress'))) {
    const props = ingress.Properties as Rule & { GroupId: { 'Fn::GetAtt': [string, string] } };
    rules.push({ ...props, group: props.GroupId['Fn::GetAtt'][0] });
  }
  return rules;
}

const groupIdOf = (template: Template, descriptionPart: string) => {
  const found = Object.entries(resourcesOf(template, 'AWS::EC2::SecurityGroup')).filter(([, sg]) =>
    String(sg.Properties.GroupDescription).includes(descriptionPart),
  );
  expect(found).toHaveLength(1);
  return found[0][0];
};
const sourceOf = (rule: Rule) =>
  (rule.SourceSecurityGroupId as { 'Fn::GetAtt': [string] })?.['Fn::GetAtt'][0];

describe('network exposure', () => {
  it('opens nothing to 0.0.0.0/0 and nothing on SSH, with every client network configured', () => {
    // Given client networks for the database and the web UI
    const { template } = synthStack({
      databaseClientCidrs: '10.0.0.0/8',
      webClientCidrs: '192.168.0.0/16',
    });
    // Then no ingress rule is open to the world, and port 22 is never opened
    const rules = ingressRules(template);
    expect(rules.length).toBeGreaterThan(5);
    for (const rule of rules) {
      expect(rule.CidrIp).not.toBe('0.0.0.0/0');
      expect(rule.FromPort! <= 22 && rule.ToPort! >= 22).toBe(false);
    }
    // And the configured networks reach exactly the endpoints they were given
    const cidrPorts = (cidr: string) =>
      rules
        .filter((rule) => rule.CidrIp === cidr)
        .map((rule) => rule.FromPort)
        .sort();
    expect(cidrPorts('10.0.0.0/8')).toEqual([5432, 5432, 5433]);
    expect(cidrPorts('192.168.0.0/16')).toEqual([443]);
  });

  it('admits etcd clients only from the backend tier and the members themselves, and peers only from members', () => {
    const { template } = synthStack();
    const etcd = groupIdOf(template, 'etcd members');
    const backend = groupIdOf(template, 'Patroni/PostgreSQL');
    const intoEtcd = ingressRules(template).filter((rule) => rule.group === etcd);
    expect(intoEtcd.map((rule) => [rule.FromPort, sourceOf(rule)]).sort()).toEqual([
      [2379, backend],
      [2379, etcd],
      [2380, etcd],
    ]);
  });

  it('admits PostgreSQL and Patroni REST only from the NLB, the web tier, the cluster status, upgrade, failover and cluster-metrics functions and peers, and pgBackRest only from peers', () => {
    const { template } = synthStack();
    const backend = groupIdOf(template, 'Patroni/PostgreSQL');
    const nlb = groupIdOf(template, 'database endpoints');
    const web = groupIdOf(template, 'PEM web instances');
    const clusterStatus = groupIdOf(template, 'pem-ha cluster-status function');
    const upgrade = groupIdOf(template, 'pem-ha upgrade function');
    const failover = groupIdOf(template, 'pem-ha failover function');
    const metrics = groupIdOf(template, 'pem-ha cluster-metrics function');
    const intoBackend = ingressRules(template)
      .filter((rule) => rule.group === backend)
      .map((rule) => `${rule.FromPort} from ${sourceOf(rule) ?? rule.CidrIp}`)
      .sort();
    expect(intoBackend).toEqual(
      [
        `5432 from ${nlb}`,
        `5432 from ${web}`,
        `5432 from ${backend}`,
        `8008 from ${nlb}`,
        `8008 from ${backend}`,
        `8008 from ${clusterStatus}`,
        `8008 from ${upgrade}`,
        `8008 from ${failover}`,
        `8008 from ${metrics}`,
        // pgBackRest's TLS server: backups on a replica reach the primary, from backends only.
        `8432 from ${backend}`,
      ].sort(),
    );
  });
});

describe('instance hygiene', () => {
  const { template } = synthStack();
  const instances = Object.values(resourcesOf(template, 'AWS::EC2::Instance')).map(
    (r) => r.Properties,
  );
  const launchTemplates = Object.values(resourcesOf(template, 'AWS::EC2::LaunchTemplate')).map(
    (r) => r.Properties.LaunchTemplateData as { MetadataOptions: { HttpTokens: string } },
  );

  it('runs 3 etcd, 3 backend and 2 web instances by default', () => {
    const tierOf = (props: Record<string, unknown>) =>
      (props.Tags as Array<{ Key: string; Value: string }>).find((tag) => tag.Key === 'pem-ha:tier')
        ?.Value;
    const counts = instances.reduce<Record<string, number>>((acc, props) => {
      const tier = tierOf(props) ?? 'none';
      acc[tier] = (acc[tier] ?? 0) + 1;
      return acc;
    }, {});
    expect(counts).toEqual({ etcd: 3, backend: 3, web: 2 });
  });

  it('requires IMDSv2 on every instance', () => {
    expect(launchTemplates).toHaveLength(instances.length);
    for (const data of launchTemplates) expect(data.MetadataOptions.HttpTokens).toBe('required');
  });

  it('has no key pair, monitors in detail and encrypts every volume', () => {
    for (const props of instances) {
      expect(props.KeyName).toBeUndefined();
      expect(props.Monitoring).toBe(true);
      for (const mapping of props.BlockDeviceMappings as Array<{ Ebs: Record<string, unknown> }>) {
        expect(mapping.Ebs).toMatchObject({ Encrypted: true, VolumeType: 'gp3' });
      }
    }
    const volumes = Object.values(resourcesOf(template, 'AWS::EC2::Volume')).map(
      (r) => r.Properties,
    );
    expect(volumes).toHaveLength(3);
    for (const volume of volumes)
      expect(volume).toMatchObject({ Encrypted: true, VolumeType: 'gp3', Size: 100 });
  });

  it('protects data nodes from termination and gives every node an EC2 recovery alarm', () => {
    for (const props of instances) expect(props.DisableApiTermination).toBe(true);
    const recoveryAlarms = Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm')).filter(
      (alarm) => JSON.stringify(alarm.Properties.AlarmActions ?? []).includes(':ec2:recover'),
    );
    expect(recoveryAlarms).toHaveLength(instances.length);
  });

  it("gives the instance roles the SSM agent's own actions, and no account-wide Parameter Store or document reads", () => {
    const roles = Object.entries(resourcesOf(template, 'AWS::IAM::Role')).filter(([, role]) =>
      JSON.stringify(role.Properties.AssumeRolePolicyDocument).includes('ec2.amazonaws.com'),
    );
    expect(roles).toHaveLength(3);
    const policies = Object.values(resourcesOf(template, 'AWS::IAM::Policy'));
    for (const [roleId, role] of roles) {
      // Given every statement of every policy attached to a node role
      const statements = policies
        .filter((policy) => JSON.stringify(policy.Properties.Roles).includes(`"${roleId}"`))
        .flatMap(
          (policy) =>
            (policy.Properties.PolicyDocument as { Statement: Record<string, unknown>[] })
              .Statement,
        );
      const actions = statements.flatMap((statement) => [statement.Action].flat() as string[]);
      // Then no managed policy, the agent's Run Command and Session Manager actions,
      expect({ roleId, managed: role.Properties.ManagedPolicyArns }).toEqual({
        roleId,
        managed: undefined,
      });
      expect(actions).toEqual(
        expect.arrayContaining([
          'ssm:UpdateInstanceInformation',
          'ec2messages:GetMessages',
          'ec2messages:SendReply',
          'ssmmessages:CreateControlChannel',
          'ssmmessages:OpenDataChannel',
        ]),
      );
      // and no SSM action beyond the agent's (no GetParameter(s), GetDocument, SendCommand)
      expect(
        actions.filter(
          (action) =>
            action.startsWith('ssm:') &&
            !['ssm:UpdateInstanceInformation', 'ssm:ListInstanceAssociations'].includes(action),
        ),
      ).toEqual([]);
    }
  });
});

describe('designed flows: what the security groups allow, and nothing else', () => {
  // Given the default topology with client networks for the database and the web UI
  const { template } = synthStack({
    databaseClientCidrs: '10.0.0.0/8',
    webClientCidrs: '192.168.0.0/16',
  });
  const synthesized = template.toJSON() as SynthesizedTemplate;
  const rules = securityGroupRules(synthesized);
  const names = new Map(
    securityGroups(synthesized).map((group) => [group.logicalId, tierNameOf(group.description)]),
  );
  const named = (flow: string) => flow.replace(/[A-Za-z0-9]+(?= ->|:)/g, (id) => names.get(id)!);

  it('lets every designed flow between tiers through both ends, and no other', () => {
    // When the flows both ends of a pair of groups allow are listed
    const flows = groupToGroupFlows(rules).map(named).sort();
    // Then they are exactly the designed ones
    expect(flows).toEqual(
      [
        'nlb -> backend:5432',
        'nlb -> backend:8008',
        'backend -> backend:5432',
        'backend -> backend:8008',
        'backend -> backend:8432',
        'backend -> etcd:2379',
        'etcd -> etcd:2379',
        'etcd -> etcd:2380',
        'web -> nlb:5432',
        'web -> nlb:5433',
        'web -> backend:5432',
        'alb -> web:8443',
        'cluster-status function -> backend:8008',
        'upgrade function -> backend:8008',
        'failover function -> backend:8008',
        'cluster-metrics function -> backend:8008',
      ].sort(),
    );
  });

  it('admits client networks only to the endpoints, and the VPC only to the AWS API endpoints', () => {
    // When the ingress rules from CIDRs are listed
    const fromCidrs = rules
      .filter((rule) => rule.direction === 'ingress' && rule.peer.kind === 'cidr')
      .map(
        (rule) =>
          `${(rule.peer as { cidr: string }).cidr} -> ${names.get(rule.group)}:${rule.fromPort}`,
      )
      .sort();
    // Then the database clients reach the NLB (and the multi-host string the backends),
    // browsers reach the ALB, and the VPC reaches only the interface endpoints
    const endpointRules = fromCidrs.filter((flow) => flow.includes('vpc endpoint'));
    expect(endpointRules).toHaveLength(7);
    for (const flow of endpointRules) expect(flow).toBe('10.40.0.0/16 -> vpc endpoint:443');
    expect(fromCidrs.filter((flow) => !flow.includes('vpc endpoint'))).toEqual(
      [
        '10.0.0.0/8 -> nlb:5432',
        '10.0.0.0/8 -> nlb:5433',
        '10.0.0.0/8 -> backend:5432',
        '192.168.0.0/16 -> alb:443',
      ].sort(),
    );
  });
});

/** A short name for a group from its description, as the designed flows say it. */
function tierNameOf(description: string): string {
  const known: [RegExp, string][] = [
    [/etcd members/, 'etcd'],
    [/Patroni\/PostgreSQL/, 'backend'],
    [/database endpoints/, 'nlb'],
    [/PEM web instances/, 'web'],
    [/PEM web load balancer/, 'alb'],
    [/cluster-status function/, 'cluster-status function'],
    [/upgrade function/, 'upgrade function'],
    [/failover function/, 'failover function'],
    [/cluster-metrics function/, 'cluster-metrics function'],
    [/\/Network\/Vpc\//, 'vpc endpoint'],
  ];
  return known.find(([pattern]) => pattern.test(description))?.[1] ?? description;
}
