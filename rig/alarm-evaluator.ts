/**
 * Evaluates a template's alarm the way CloudWatch does, over the datapoints
 * the rig recorded: periods aligned to the clock, the statistic of each,
 * metric math (FILL, MAX, MIN, + and -), M of N periods past the threshold,
 * missing data treated as the alarm says. The in-progress period counts once
 * a datapoint is in it (CloudWatch waits for late data rather than call it
 * missing).
 *
 * `periodScale` shortens every period for tests (0.1: a 60 s period lasts
 * 6 s); thresholds and counts are the template's own.
 */
import type { AlarmDefinition, MetricQuery } from './alarm-definitions';
import type { Datapoint } from './local-aws/cloudwatch';

export type AlarmState = 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';

export interface Evaluation {
  readonly state: AlarmState;
  /** The periods' values, newest first (undefined: no data). */
  readonly values: readonly (number | undefined)[];
}

/** Datapoints of a metric whose dimensions are exactly the query's, as CloudWatch matches them. */
export function matching(points: readonly Datapoint[], query: MetricQuery): Datapoint[] {
  const wanted = Object.entries(query.dimensions);
  return points.filter(
    (p) =>
      p.metricName === query.metricName &&
      p.namespace === query.namespace &&
      Object.keys(p.dimensions).length === wanted.length &&
      wanted.every(([name, value]) => p.dimensions[name] === value),
  );
}

function statistic(name: string, values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  switch (name) {
    case 'Maximum':
      return Math.max(...values);
    case 'Minimum':
      return Math.min(...values);
    case 'Sum':
      return values.reduce((a, b) => a + b, 0);
    case 'SampleCount':
      return values.length;
    case 'Average':
      return values.reduce((a, b) => a + b, 0) / values.length;
    default:
      throw new Error(`the rig does not evaluate the statistic ${name}`);
  }
}

export function evaluateAlarm(
  alarm: AlarmDefinition,
  points: readonly Datapoint[],
  now: number,
  periodScale = 1,
): Evaluation {
  const periodMs = alarm.periodSeconds * 1000 * periodScale;
  const series = Object.fromEntries(
    Object.entries(alarm.metrics).map(([id, query]) => [id, matching(points, query)]),
  );
  const valueIn = (from: number, to: number): number | undefined => {
    const of = (id: string) =>
      statistic(
        alarm.metrics[id].statistic,
        series[id].filter((p) => p.timestamp >= from && p.timestamp < to).map((p) => p.value),
      );
    return alarm.expression ? evaluateExpression(alarm.expression, of) : of('m');
  };
  const currentStart = Math.floor(now / periodMs) * periodMs;
  // The in-progress period counts once any metric in it has a datapoint (not a FILL's value).
  const currentHasData = Object.values(series).some((points) =>
    points.some((p) => p.timestamp >= currentStart && p.timestamp <= now),
  );
  const values: (number | undefined)[] = currentHasData ? [valueIn(currentStart, now + 1)] : [];
  for (let end = currentStart; values.length < alarm.evaluationPeriods; end -= periodMs) {
    values.push(valueIn(end - periodMs, end));
  }
  let considered = 0;
  let breaching = 0;
  for (const value of values) {
    if (value === undefined) {
      if (alarm.missingData === 'breaching' || alarm.missingData === 'notBreaching') considered++;
      if (alarm.missingData === 'breaching') breaching++;
      continue;
    }
    considered++;
    if (breaches(alarm, value)) breaching++;
  }
  if (considered === 0) return { state: 'INSUFFICIENT_DATA', values };
  return { state: breaching >= alarm.datapointsToAlarm ? 'ALARM' : 'OK', values };
}

function breaches(alarm: AlarmDefinition, value: number): boolean {
  switch (alarm.comparison) {
    case 'GreaterThanThreshold':
      return value > alarm.threshold;
    case 'GreaterThanOrEqualToThreshold':
      return value >= alarm.threshold;
    case 'LessThanThreshold':
      return value < alarm.threshold;
    case 'LessThanOrEqualToThreshold':
      return value <= alarm.threshold;
  }
}

/**
 * Metric math over one period: ids, numbers, `+`, `-`, parentheses,
 * `FILL(x, n)`, `MAX([..])` and `MIN([..])`. Arithmetic with missing data is
 * missing; MAX and MIN skip it.
 */
export function evaluateExpression(
  expression: string,
  valueOf: (id: string) => number | undefined,
): number | undefined {
  const tokens = expression.match(/[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?|[-+(),[\]]/g) ?? [];
  let at = 0;
  const next = () => tokens[at++];
  const expect = (token: string) => {
    if (next() !== token) throw new Error(`expected ${token} in the expression ${expression}`);
  };
  const list = (): (number | undefined)[] => {
    expect('[');
    const items = [sum()];
    while (tokens[at] === ',') {
      next();
      items.push(sum());
    }
    expect(']');
    return items;
  };
  const term = (): number | undefined => {
    const token = next();
    if (token === '(') {
      const inner = sum();
      expect(')');
      return inner;
    }
    if (/^\d/.test(token)) return Number(token);
    if (token === 'FILL' || token === 'MAX' || token === 'MIN') {
      expect('(');
      let result: number | undefined;
      if (token === 'FILL') {
        const value = sum();
        expect(',');
        const fill = sum();
        result = value ?? fill;
      } else {
        const known = list().filter((v): v is number => v !== undefined);
        result = known.length ? (token === 'MAX' ? Math.max : Math.min)(...known) : undefined;
      }
      expect(')');
      return result;
    }
    if (/^[A-Za-z_]/.test(token) && tokens[at] !== '(') return valueOf(token);
    throw new Error(`the rig cannot read ${token} in the expression ${expression}`);
  };
  const sum = (): number | undefined => {
    let value = term();
    while (tokens[at] === '+' || tokens[at] === '-') {
      const sign = next() === '+' ? 1 : -1;
      const right = term();
      value = value === undefined || right === undefined ? undefined : value + sign * right;
    }
    return value;
  };
  const result = sum();
  if (at !== tokens.length) throw new Error(`the rig cannot read the expression ${expression}`);
  return result;
}
