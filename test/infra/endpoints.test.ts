import { Match } from 'aws-cdk-lib/assertions';
import { resourcesOf, synthStack } from '../helpers/synth';

type TargetGroup = {
  Port: number;
  Protocol: string;
  HealthCheckProtocol: string;
  HealthCheckPort: string;
  HealthCheckPath: string;
  HealthCheckIntervalSeconds: number;
  HealthCheckTimeoutSeconds: number;
  HealthyThresholdCount: number;
  UnhealthyThresholdCount: number;
  TargetGroupAttributes: Array<{ Key: string; Value: string }>;
  Targets: unknown[];
};

function databaseTargetGroups(settings: Record<string, unknown> = {}) {
  const { template } = synthStack(settings);
  const groups = Object.values(resourcesOf(template, 'AWS::ElasticLoadBalancingV2::TargetGroup'))
    .map((resource) => resource.Properties as unknown as TargetGroup)
    .filter((group) => group.Protocol === 'TCP');
  const byPath = (prefix: string) => {
    const found = groups.filter((group) => group.HealthCheckPath.startsWith(prefix));
    expect(found).toHaveLength(1);
    return found[0];
  };
  return { template, primary: byPath('/primary'), replica: byPath('/replica') };
}

const attribute = (group: TargetGroup, key: string) =>
  group.TargetGroupAttributes.find((entry) => entry.Key === key)?.Value;

describe('database endpoints (internal NLB)', () => {
  it('routes the write endpoint to whichever backend answers HTTPS GET /primary on 8008', () => {
    // Given the default configuration, When synthesized
    const { template, primary } = databaseTargetGroups();

    // Then the 5432 target group checks Patroni's /primary over HTTPS on the REST port
    expect(primary).toMatchObject({
      Port: 5432,
      HealthCheckProtocol: 'HTTPS',
      HealthCheckPort: '8008',
      HealthCheckPath: '/primary',
      HealthCheckIntervalSeconds: 5,
      HealthyThresholdCount: 2,
      UnhealthyThresholdCount: 2,
    });
    expect(primary.HealthCheckTimeoutSeconds).toBeLessThan(primary.HealthCheckIntervalSeconds);
    expect(primary.Targets).toHaveLength(3);
    // And a TCP listener on 5432 forwards to it
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 5432,
      Protocol: 'TCP',
    });
  });

  it('routes the read endpoint on 5433 to replicas within the configured lag', () => {
    const { template, replica } = databaseTargetGroups({ replicaMaxLagBytes: '1048576' });
    expect(replica.HealthCheckPath).toBe('/replica?lag=1048576');
    expect(replica.Port).toBe(5432);
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 5433,
      Protocol: 'TCP',
    });
  });

  it('takes health-check interval and thresholds from the configuration', () => {
    const { primary, replica } = databaseTargetGroups({
      healthCheckIntervalSeconds: '10',
      healthCheckHealthyThreshold: '3',
      healthCheckUnhealthyThreshold: '4',
    });
    for (const group of [primary, replica]) {
      expect(group).toMatchObject({
        HealthCheckIntervalSeconds: 10,
        HealthyThresholdCount: 3,
        UnhealthyThresholdCount: 4,
      });
    }
  });

  it.each(['primary', 'replica'] as const)(
    'sets the %s target group so failovers and self-connections behave',
    (which) => {
      const group = databaseTargetGroups()[which];
      // A backend connecting through the NLB to itself fails with client IP preservation on.
      expect(attribute(group, 'preserve_client_ip.enabled')).toBe('false');
      // Sessions on a demoted primary are reset so clients reconnect to the new one.
      expect(attribute(group, 'target_health_state.unhealthy.connection_termination.enabled')).toBe(
        'true',
      );
      expect(Number(attribute(group, 'deregistration_delay.timeout_seconds'))).toBeLessThanOrEqual(
        30,
      );
    },
  );

  it('is internal, cross-zone and guarded by its own security group', () => {
    const { template } = synthStack();
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Type: 'network',
      Scheme: 'internal',
      SecurityGroups: Match.anyValue(),
      LoadBalancerAttributes: Match.arrayWith([
        { Key: 'load_balancing.cross_zone.enabled', Value: 'true' },
      ]),
    });
  });

  it('alarms when no backend or more than one backend passes /primary', () => {
    const { template } = synthStack();
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'HealthyHostCount',
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      TreatMissingData: 'breaching',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'HealthyHostCount',
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 1,
      Statistic: 'Maximum',
    });
  });
});
