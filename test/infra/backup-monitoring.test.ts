import { BACKUP_METRICS } from '../../functions/lib/metric-names';
import { resourcesOf, synthStack } from '../helpers/synth';

interface AlarmProperties {
  MetricName: string;
  Namespace: string;
  Dimensions: { Name: string; Value: unknown }[];
  Threshold: number;
  TreatMissingData: string;
  EvaluationPeriods: number;
  DatapointsToAlarm: number;
  Period: number;
}

/** The backup health alarms, by metric name. */
function healthAlarms(template: ReturnType<typeof synthStack>['template']) {
  return Object.fromEntries(
    Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm'))
      .map((alarm) => alarm.Properties as unknown as AlarmProperties)
      .filter((alarm) => alarm.Namespace === BACKUP_METRICS.namespace)
      .map((alarm) => [alarm.MetricName, alarm]),
  );
}

describe('backup monitoring in the template', () => {
  const { template } = synthStack();
  const alarms = healthAlarms(template);

  test('Given the defaults, then the health runbook runs every 5 minutes', () => {
    const rules = Object.values(resourcesOf(template, 'AWS::Events::Rule'))
      .map((rule) => rule.Properties as { ScheduleExpression: string; Targets: { Arn: unknown }[] })
      .filter((rule) => JSON.stringify(rule.Targets[0].Arn).includes('BackupMonitoring'));
    expect(rules.map((rule) => rule.ScheduleExpression)).toEqual(['rate(5 minutes)']);
  });

  test('Given the defaults, then archive age, queue, failures and backup age each have an alarm that breaches on missing data', () => {
    expect(
      Object.entries(alarms).map(([name, alarm]) => [
        name,
        alarm.Threshold,
        alarm.TreatMissingData,
      ]),
    ).toEqual([
      ['ArchiveAgeSeconds', 300, 'breaching'],
      // Half of archive-push-queue-max, itself half of the default 100 GiB data volume.
      ['ArchiveQueueBytes', 25 * 1024 ** 3, 'breaching'],
      ['ArchiveFailing', 1, 'breaching'],
      ['HoursSinceLastBackup', 30, 'breaching'],
    ]);
  });

  test('Given one late run, then no alarm fires: each needs 2 of 3 five-minute readings', () => {
    for (const alarm of Object.values(alarms)) {
      expect([alarm.Period, alarm.EvaluationPeriods, alarm.DatapointsToAlarm]).toEqual([300, 3, 2]);
    }
  });

  test('Given the alarms, then they watch the cluster dimension the function publishes with', () => {
    for (const alarm of Object.values(alarms)) {
      expect(alarm.Dimensions).toEqual(
        expect.arrayContaining([
          { Name: 'ClusterName', Value: 'pem-ha' },
          { Name: 'service', Value: BACKUP_METRICS.service },
        ]),
      );
    }
  });

  test('Given thresholds in the config, then the alarms use them', () => {
    const custom = healthAlarms(
      synthStack({ archiveAgeAlarmSeconds: 120, backupAgeAlarmHours: 170 }).template,
    );
    expect([custom.ArchiveAgeSeconds.Threshold, custom.HoursSinceLastBackup.Threshold]).toEqual([
      120, 170,
    ]);
  });

  test('Given an archive-age threshold below 30 s, then loading fails naming the setting, what is allowed and what was given', () => {
    expect(() => synthStack({ archiveAgeAlarmSeconds: 5 })).toThrow(
      /archiveAgeAlarmSeconds.*30.*86400.*5/s,
    );
  });
});
