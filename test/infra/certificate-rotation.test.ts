import { readersOf, resourcesOf, synthStack } from '../helpers/synth';

describe('certificate rotation in the template', () => {
  const { template } = synthStack();

  test('Given the PKI, then the root key is readable only by the CA function and the intermediate key not by any reader of the cluster', () => {
    expect(readersOf(template, 'PkiRoot')).toEqual(['RunbooksClusterCaRole']);
    expect(readersOf(template, 'PkiIntermediate')).toEqual([
      'RunbooksClusterCaRole',
      'RunbooksSignCertificatesRole',
    ]);
    expect(readersOf(template, 'PkiTrust')).toEqual([
      'MonitoringPublisherRole',
      'PrimaryFailoverFailoverStepsRole',
      'RollingUpgradeUpgradeStepsRole',
      'RunbooksClusterCaRole',
      'RunbooksClusterStatusRole',
      'RunbooksRecordExpiryRole',
    ]);
  });

  test('Given the defaults, then rotation is scheduled daily at noon UTC, away from the 01:00 backups, with an empty input', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(0 12 * * ? *)',
      State: 'ENABLED',
      Targets: [{ Input: '{}' }],
    });
  });

  test('Given a schedule in the config, then the rule uses it', () => {
    const custom = synthStack({ certificateRotationSchedule: 'cron(0 3 * * ? *)' }).template;
    custom.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'cron(0 3 * * ? *)' });
  });

  test('Given the defaults, then the expiry alarm fires below 21 days on the cluster minimum and treats missing data as breaching', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'PemHa/Certificates',
      MetricName: 'DaysToExpiry',
      Dimensions: [
        { Name: 'ClusterName', Value: 'pem-ha' },
        { Name: 'service', Value: 'pem-ha' },
      ],
      Statistic: 'Minimum',
      Period: 86400,
      Threshold: 21,
      ComparisonOperator: 'LessThanThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'breaching',
    });
  });

  test('Given an alarm threshold in the config, then the alarm uses it', () => {
    const custom = synthStack({ certificateExpiryAlarmDays: 10 }).template;
    custom.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'DaysToExpiry',
      Threshold: 10,
    });
  });

  test('Given the defaults, then a failed, timed-out or aborted rotation raises the failure alarm', () => {
    const alarms = Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm')).map(
      (a) => a.Properties,
    );
    const failure = alarms.find((a) => {
      const metrics = JSON.stringify(a.Metrics ?? '');
      return (
        metrics.includes('ExecutionsFailed') && metrics.includes('CertificateRotationStateMachine')
      );
    });
    expect(failure).toMatchObject({
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
    const names = JSON.stringify(failure!.Metrics);
    for (const metric of ['ExecutionsFailed', 'ExecutionsTimedOut', 'ExecutionsAborted'])
      expect(names).toContain(metric);
  });

  test('Given the stack, then rotation and root rollover are outputs, and only the rotation is scheduled', () => {
    template.hasOutput('RotationStateMachineArn', {});
    template.hasOutput('RootRolloverStateMachineArn', {});
    const targets = Object.values(resourcesOf(template, 'AWS::Events::Rule')).map((rule) =>
      JSON.stringify(rule.Properties.Targets),
    );
    expect(targets.filter((t) => t.includes('CertificateRotationStateMachine'))).toHaveLength(1);
    expect(targets.filter((t) => t.includes('RootRolloverStateMachine'))).toHaveLength(0);
  });
});

describe('the agent certificate runbook in the template', () => {
  test('Given PEM, then the runbook is an output that invokes only the check-input and signing functions and takes no lock; without PEM there is none', () => {
    const { template } = synthStack();
    template.hasOutput('AgentCertificateStateMachineArn', {});
    const [definition] = Object.entries(resourcesOf(template, 'AWS::StepFunctions::StateMachine'))
      .filter(([id]) => id.startsWith('AgentCertificate'))
      .map(([, machine]) => JSON.stringify(machine.Properties.DefinitionString));
    const invoked = [...definition.matchAll(/"Fn::GetAtt":\["(\w+?)Function\w*","Arn"\]/g)].map(
      (match) => match[1],
    );
    expect(invoked.sort()).toEqual(['RunbooksCheckInput', 'RunbooksSignCertificates']);
    expect(definition).not.toContain('RunbookLock');

    const plain = synthStack({ pemEnabled: 'false' }).template;
    expect(Object.keys(plain.toJSON().Outputs)).not.toContain('AgentCertificateStateMachineArn');
  });
});
