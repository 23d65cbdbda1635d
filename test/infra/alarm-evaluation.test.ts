import { alarmDefinitions, type AlarmDefinition } from '../../rig/alarm-definitions';
import { evaluateAlarm, evaluateExpression } from '../../rig/alarm-evaluator';
import type { Datapoint } from '../../rig/local-aws/cloudwatch';
import type { SynthesizedTemplate } from '../../rig/template';
import { synthStack } from '../helpers/synth';

/** The template's alarms by construct path, dimensions resolved to stand-in values. */
const ALARMS = new Map(
  alarmDefinitions(
    synthStack({ 'aws:cdk:enable-path-metadata': true }).template.toJSON() as SynthesizedTemplate,
    { ref: (id) => `ref-${id}`, getAtt: (id, attribute) => `${id}.${attribute}` },
    { region: 'local-1', accountId: '000000000000' },
  ).map((alarm) => [alarm.name, alarm]),
);
const alarm = (name: string): AlarmDefinition => {
  const found = ALARMS.get(name);
  if (!found) throw new Error(`no alarm ${name}; have ${[...ALARMS.keys()].join(', ')}`);
  return found;
};

const MINUTE = 60_000;
// A moment 10 s into a minute: the in-progress period is young.
const NOW = Date.parse('2026-12-04T12:00:10Z');

/** A datapoint of the alarm's metric `id`, under exactly the dimensions it watches. */
function point(of: AlarmDefinition, value: number, msAgo: number, id = 'm'): Datapoint {
  const query = of.metrics[id];
  return {
    namespace: query.namespace,
    metricName: query.metricName,
    dimensions: query.dimensions,
    value,
    timestamp: NOW - msAgo,
  };
}

describe('alarms evaluated as CloudWatch evaluates them, from the template', () => {
  test('Given one backend below the free-space threshold in the last minute, then the data volume alarm fires; with room everywhere it is OK', () => {
    const volume = alarm('Monitoring/DataVolumeAlarm');
    // Given readings from three backends in the last complete minute
    const low = [50, 12, 48].map((v) => point(volume, v, 30_000));
    const fine = [50, 40, 48].map((v) => point(volume, v, 30_000));
    // Then the minimum decides
    expect(evaluateAlarm(volume, low, NOW).state).toBe('ALARM');
    expect(evaluateAlarm(volume, fine, NOW).state).toBe('OK');
  });

  test('Given a node that sent nothing for two minutes, then its heartbeat alarm fires (missing data breaches); one reading a minute ago keeps it OK', () => {
    const silent = alarm('Monitoring/Backend2SilentAlarm');
    expect(evaluateAlarm(silent, [], NOW).state).toBe('ALARM');
    expect(evaluateAlarm(silent, [point(silent, 1, 30_000)], NOW).state).toBe('OK');
    // A reading from another node does not count for this one
    const other = alarm('Monitoring/Backend1SilentAlarm');
    expect(evaluateAlarm(silent, [point(other, 1, 30_000)], NOW).state).toBe('ALARM');
  });

  test('Given a failed execution of a runbook in the last minute, then its failure alarm fires, and clears a minute later', () => {
    const failover = alarm('PrimaryFailover/StateMachineFailedAlarm');
    const failed = Object.keys(failover.metrics).find((id) => id.startsWith('failed'))!;
    const datapoints = [point(failover, 1, 30_000, failed)];
    expect(evaluateAlarm(failover, datapoints, NOW).state).toBe('ALARM');
    expect(evaluateAlarm(failover, datapoints, NOW + 2 * MINUTE).state).toBe('OK');
  });

  test('Given the attached EBS check failing two minutes in a row, then the status-check alarm fires', () => {
    const status = alarm('Backend/Nodes/Node1StatusCheckAlarm');
    const datapoints = [
      point(status, 1, 30_000, 'ebs'),
      point(status, 1, 90_000, 'ebs'),
      point(status, 0, 30_000, 'checks'),
      point(status, 0, 90_000, 'checks'),
    ];
    expect(evaluateAlarm(status, datapoints, NOW).state).toBe('ALARM');
    expect(evaluateAlarm(status, datapoints.slice(1), NOW).state).toBe('OK');
  });

  test('Given the in-progress minute without data yet, then the complete minutes decide; once it has data, it counts', () => {
    const primaries = alarm('Monitoring/NoPrimaryAlarm');
    // Two complete minutes without a primary: ALARM (2 of 2)
    const none = [point(primaries, 0, 30_000), point(primaries, 0, 90_000)];
    expect(evaluateAlarm(primaries, none, NOW).state).toBe('ALARM');
    // A primary again in the in-progress minute: 1 of the last 2 breaches
    expect(evaluateAlarm(primaries, [...none, point(primaries, 1, 5_000)], NOW).state).toBe('OK');
  });

  test('Given periods scaled for the rig, then a minute lasts the scaled time', () => {
    const silent = alarm('Monitoring/Etcd1SilentAlarm');
    // 60 s periods scaled by 0.1: readings 3 s and 9 s ago cover the last two 6 s periods
    const recent = [point(silent, 1, 3_000), point(silent, 1, 9_000)];
    expect(evaluateAlarm(silent, recent, NOW, 0.1).state).toBe('OK');
    expect(evaluateAlarm(silent, recent, NOW + 20_000, 0.1).state).toBe('ALARM');
  });
});

describe('metric math', () => {
  const values: Record<string, number | undefined> = { a: 1, b: undefined, c: 3 };
  test.each([
    ['FILL(a, 0) + FILL(b, 0) + FILL(c, 0)', 4],
    ['a + b', undefined],
    ['MAX([a, b, c])', 3],
    ['MIN([b, c])', 3],
    ['MAX([b])', undefined],
    ['(a + c) - 1', 3],
  ])('%s is %s', (expression, expected) => {
    expect(evaluateExpression(expression, (id) => values[id])).toBe(expected);
  });

  test('Given a function the rig does not know, then it says so', () => {
    expect(() => evaluateExpression('RATE(a)', () => 1)).toThrow(
      'the rig cannot read RATE in the expression RATE(a)',
    );
  });
});
