import { resourcesOf, synthStack } from '../helpers/synth';

/** Each backup rule's schedule and the input it starts the runbook with. */
function backupRules(template: ReturnType<typeof synthStack>['template']) {
  return Object.values(resourcesOf(template, 'AWS::Events::Rule'))
    .map(
      (rule) =>
        rule.Properties as {
          ScheduleExpression: string;
          Targets: { Arn: unknown; Input: string }[];
        },
    )
    .filter((rule) => JSON.stringify(rule.Targets[0].Arn).includes('ScheduledBackupsStateMachine'))
    .map((rule) => [rule.ScheduleExpression, rule.Targets[0].Input]);
}

describe('scheduled backups in the template', () => {
  const { template } = synthStack();

  test('Given the defaults, then a full backup starts on Sundays and a differential one on the other days, at 01:00 UTC', () => {
    expect(backupRules(template).sort()).toEqual([
      ['cron(0 1 ? * MON-SAT *)', '{"type":"diff"}'],
      ['cron(0 1 ? * SUN *)', '{"type":"full"}'],
    ]);
  });

  test('Given schedules in the config, then the rules use them', () => {
    const custom = synthStack({
      backupFullSchedule: 'rate(1 day)',
      backupDiffSchedule: 'rate(6 hours)',
    }).template;
    expect(backupRules(custom).sort()).toEqual([
      ['rate(1 day)', '{"type":"full"}'],
      ['rate(6 hours)', '{"type":"diff"}'],
    ]);
  });

  test('Given a schedule that is not an EventBridge expression, then loading fails naming the setting, what is allowed and what was given', () => {
    expect(() => synthStack({ backupFullSchedule: 'every sunday' })).toThrow(
      /backupFullSchedule.*EventBridge schedule.*"every sunday"/s,
    );
  });

  test('Given the stack, then the runbook is an output and a failed, timed-out or aborted backup raises its alarm', () => {
    template.hasOutput('BackupStateMachineArn', {});
    const failure = Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm'))
      .map((alarm) => alarm.Properties)
      .find((alarm) =>
        JSON.stringify(alarm.Metrics ?? '').includes('ScheduledBackupsStateMachine'),
      );
    expect(failure).toMatchObject({
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
    for (const metric of ['ExecutionsFailed', 'ExecutionsTimedOut', 'ExecutionsAborted'])
      expect(JSON.stringify(failure!.Metrics)).toContain(metric);
  });
});
