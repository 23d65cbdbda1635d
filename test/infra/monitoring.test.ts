import { CLUSTER_METRICS as M } from '../../functions/lib/metric-names';
import { resourcesOf, synthStack } from '../helpers/synth';

interface AlarmProperties {
  readonly MetricName?: string;
  readonly Namespace?: string;
  readonly Dimensions?: { Name: string; Value: unknown }[];
  readonly Metrics?: { Expression?: string; MetricStat?: { Metric: { MetricName: string } } }[];
  readonly Threshold: number;
  readonly ComparisonOperator: string;
  readonly EvaluationPeriods: number;
  readonly DatapointsToAlarm?: number;
  readonly Period?: number;
  readonly TreatMissingData: string;
  readonly AlarmActions?: unknown[];
  readonly OKActions?: unknown[];
}

function alarmsOf(template: ReturnType<typeof synthStack>['template']) {
  return Object.entries(resourcesOf(template, 'AWS::CloudWatch::Alarm')).map(
    ([id, alarm]) => [id, alarm.Properties as unknown as AlarmProperties] as const,
  );
}

/** The cluster alarms on `metricName`, by the Member or Node they watch ('' for none). */
function clusterAlarms(template: ReturnType<typeof synthStack>['template'], metricName: string) {
  return Object.fromEntries(
    alarmsOf(template)
      .filter(([, a]) => a.Namespace === M.namespace && a.MetricName === metricName)
      .map(([, a]) => {
        const scope = a.Dimensions?.find((d) => d.Name === 'Member' || d.Name === 'Node');
        return [String(scope?.Value ?? ''), a];
      }),
  );
}

describe('alarm notifications', () => {
  test('Given the defaults, then every alarm of the stack notifies one encrypted topic on ALARM and on OK', () => {
    const { template } = synthStack();
    const topics = resourcesOf(template, 'AWS::SNS::Topic');
    // Then there is one topic, encrypted with the cluster's key
    expect(Object.values(topics)).toHaveLength(1);
    const [[topicId, topic]] = Object.entries(topics);
    expect(JSON.stringify(topic.Properties?.KmsMasterKeyId)).toContain('SecretsKey');
    // And no alarm is without both actions
    const alarms = alarmsOf(template);
    expect(alarms.length).toBeGreaterThan(40);
    const silent = alarms
      .filter(
        ([, a]) =>
          !JSON.stringify(a.AlarmActions ?? []).includes(topicId) ||
          !JSON.stringify(a.OKActions ?? []).includes(topicId),
      )
      .map(([id]) => id);
    expect(silent).toEqual([]);
    // And the key lets CloudWatch encrypt what it publishes
    const keyPolicy = JSON.stringify(
      Object.values(resourcesOf(template, 'AWS::KMS::Key'))[0].Properties?.KeyPolicy,
    );
    expect(keyPolicy).toContain('cloudwatch.amazonaws.com');
  });

  test('Given alarmEmail, then the address is subscribed to the topic', () => {
    const { template } = synthStack({ alarmEmail: 'oncall@example.com' });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
    });
  });

  test('Given alarmTopicArn, then no topic is created and every alarm notifies that one', () => {
    const arn = 'arn:aws:sns:eu-west-1:123456789012:oncall';
    const { template } = synthStack({ alarmTopicArn: arn });
    expect(Object.keys(resourcesOf(template, 'AWS::SNS::Topic'))).toEqual([]);
    for (const [, alarm] of alarmsOf(template)) {
      expect(alarm.AlarmActions).toContain(arn);
      expect(alarm.OKActions).toContain(arn);
    }
  });
});

describe('cluster alarms', () => {
  const { template } = synthStack();

  test('Given the defaults, then the thresholds are the documented ones', () => {
    const threshold = (metricName: string, scope = '') =>
      clusterAlarms(template, metricName)[scope]?.Threshold;
    expect(threshold(M.dataVolumeFreePercent)).toBe(15);
    expect(threshold(M.connectionsPercent)).toBe(80);
    expect(threshold(M.xidAge)).toBe(1_000_000_000);
    expect(threshold(M.oldestTransactionSeconds)).toBe(120);
    expect(threshold(M.replayDelaySeconds, 'backend-2')).toBe(60);
    expect(threshold(M.replicaLagBytes, 'backend-3')).toBe(16777216);
    expect(threshold(M.dcsLastSeenSeconds, 'backend-1')).toBe(30);
    // Three etcd members: quorum (2) + 1 must answer healthy
    expect(threshold(M.etcdMembersHealthy)).toBe(3);
    // Half of max_slot_wal_keep_size (a fifth of the default 100 GiB volume)
    expect(threshold(M.slotRetainedWalBytes)).toBe(10 * 1024 ** 3);
    // Pending restart: 24 hourly periods
    const pending = clusterAlarms(template, M.pendingRestartMembers)[''];
    expect([pending.Period, pending.EvaluationPeriods]).toEqual([3600, 24]);
  });

  test('Given settings, then the alarms use them', () => {
    const custom = synthStack({
      connectionsAlarmPercent: 70,
      dataVolumeFreeAlarmPercent: 25,
      replicaReplayDelayAlarmSeconds: 300,
      pendingRestartAlarmHours: 6,
    }).template;
    expect(clusterAlarms(custom, M.connectionsPercent)[''].Threshold).toBe(70);
    expect(clusterAlarms(custom, M.dataVolumeFreePercent)[''].Threshold).toBe(25);
    expect(clusterAlarms(custom, M.replayDelaySeconds)['backend-1'].Threshold).toBe(300);
    expect(clusterAlarms(custom, M.pendingRestartMembers)[''].EvaluationPeriods).toBe(6);
  });

  test('Given a silent publisher or node, then its heartbeat alarm counts the silence as breaching', () => {
    const heartbeats = clusterAlarms(template, M.nodeHeartbeat);
    expect(Object.keys(heartbeats).sort()).toEqual([
      'backend-1',
      'backend-2',
      'backend-3',
      'etcd-1',
      'etcd-2',
      'etcd-3',
    ]);
    for (const alarm of [
      ...Object.values(heartbeats),
      clusterAlarms(template, M.publisherRuns)[''],
      clusterAlarms(template, M.membersRunning)[''],
    ]) {
      expect(alarm.TreatMissingData).toBe('breaching');
    }
  });

  test('Given the metrics, then each is read at 1-minute resolution except the pending restart', () => {
    const periods = alarmsOf(template)
      .filter(([, a]) => a.Namespace === M.namespace && a.MetricName !== M.pendingRestartMembers)
      .map(([, a]) => a.Period);
    expect(new Set(periods)).toEqual(new Set([60]));
  });

  test('Given the runbooks, then each one has an alarm on a failed, timed-out or aborted execution', () => {
    // The custom resource provider's own waiter is CloudFormation's business, not a runbook.
    const machines = Object.keys(resourcesOf(template, 'AWS::StepFunctions::StateMachine')).filter(
      (id) => !id.includes('Providerwaiter'),
    );
    const watched = alarmsOf(template)
      .filter(([, a]) => JSON.stringify(a.Metrics ?? []).includes('ExecutionsFailed'))
      .map(([, a]) => JSON.stringify(a.Metrics));
    expect(machines.length).toBeGreaterThanOrEqual(9);
    for (const machine of machines) {
      expect(watched.filter((metrics) => metrics.includes(machine))).toHaveLength(1);
    }
  });

  test('Given the nodes, then each has a status-check alarm over the instance, system and EBS checks', () => {
    const statusAlarms = alarmsOf(template).filter(([, a]) =>
      JSON.stringify(a.Metrics ?? []).includes('StatusCheckFailed_AttachedEBS'),
    );
    expect(statusAlarms).toHaveLength(
      Object.keys(resourcesOf(template, 'AWS::EC2::Instance')).length,
    );
  });
});

describe('metric publishing', () => {
  const { template } = synthStack();

  test('Given the stack, then the publisher runs every minute in the VPC and the nodes may publish only into the cluster namespace', () => {
    const rules = Object.values(resourcesOf(template, 'AWS::Events::Rule')).filter((rule) =>
      JSON.stringify(rule.Properties?.Targets).includes('MonitoringPublisher'),
    );
    expect(rules.map((rule) => rule.Properties?.ScheduleExpression)).toEqual(['rate(1 minute)']);
    const publishers = Object.values(resourcesOf(template, 'AWS::IAM::Policy'))
      .map(
        (policy) => policy.Properties?.PolicyDocument as { Statement: Record<string, unknown>[] },
      )
      .flatMap((document) => document.Statement)
      .filter((statement) => JSON.stringify(statement.Action).includes('cloudwatch:PutMetricData'));
    expect(publishers.length).toBeGreaterThanOrEqual(2);
    for (const statement of publishers) {
      expect(statement.Condition).toEqual({
        StringEquals: { 'cloudwatch:namespace': M.namespace },
      });
    }
  });

  test('Given the stack, then the dashboard is an output with a row per concern', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(JSON.stringify(outputs.DashboardUrl.Value)).toContain('#dashboards:name=pem-ha');
    const body = JSON.stringify(
      Object.values(resourcesOf(template, 'AWS::CloudWatch::Dashboard'))[0].Properties
        ?.DashboardBody,
    );
    for (const row of [
      'Endpoints',
      'Replication',
      'etcd',
      'Database health',
      'Runbooks',
      'Certificates and backups',
    ]) {
      expect(body).toContain(`## ${row}`);
    }
  });
});
