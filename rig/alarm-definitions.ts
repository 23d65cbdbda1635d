/**
 * The alarms of a synthesized template as CloudWatch reads them: the metric
 * (or metric-math expression), statistic, period, threshold, comparison,
 * evaluation periods, datapoints to alarm and missing-data handling, with
 * every dimension's intrinsic resolved the way the rig resolves the rest.
 */
import {
  PseudoParameters,
  ResourceValues,
  resolveIntrinsics,
  resourcesOfType,
  SynthesizedTemplate,
} from './template';

export interface MetricQuery {
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Readonly<Record<string, string>>;
  readonly statistic: string;
  readonly periodSeconds: number;
}

export type Comparison =
  | 'GreaterThanThreshold'
  | 'GreaterThanOrEqualToThreshold'
  | 'LessThanThreshold'
  | 'LessThanOrEqualToThreshold';

export type MissingData = 'breaching' | 'notBreaching' | 'ignore' | 'missing';

export interface AlarmDefinition {
  /** Its construct path without the stack and `/Resource`, e.g. `Monitoring/DataVolumeAlarm`. */
  readonly name: string;
  readonly threshold: number;
  readonly comparison: Comparison;
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm: number;
  readonly missingData: MissingData;
  readonly periodSeconds: number;
  /** One metric, or the expression over `metrics` whose result the alarm watches. */
  readonly expression?: string;
  readonly metrics: Readonly<Record<string, MetricQuery>>;
}

interface MetricStat {
  readonly Metric: {
    readonly Namespace: string;
    readonly MetricName: string;
    readonly Dimensions?: readonly { Name: string; Value: unknown }[];
  };
  readonly Period: number;
  readonly Stat: string;
}

interface AlarmProperties {
  readonly Namespace?: string;
  readonly MetricName?: string;
  readonly Dimensions?: readonly { Name: string; Value: unknown }[];
  readonly Statistic?: string;
  readonly ExtendedStatistic?: string;
  readonly Period?: number;
  readonly Metrics?: readonly {
    readonly Id: string;
    readonly Expression?: string;
    readonly MetricStat?: MetricStat;
    readonly ReturnData?: boolean;
  }[];
  readonly Threshold: number;
  readonly ComparisonOperator: Comparison;
  readonly EvaluationPeriods: number;
  readonly DatapointsToAlarm?: number;
  readonly TreatMissingData?: MissingData;
}

/** Every alarm of the template, its dimensions resolved with `resources`. */
export function alarmDefinitions(
  template: SynthesizedTemplate,
  resources: ResourceValues,
  pseudo: PseudoParameters,
): AlarmDefinition[] {
  const dimensionsOf = (dimensions: AlarmProperties['Dimensions']) =>
    Object.fromEntries(
      (dimensions ?? []).map(({ Name, Value }) => [
        Name,
        String(resolveIntrinsics(Value, resources, pseudo)),
      ]),
    );
  return resourcesOfType(template, 'AWS::CloudWatch::Alarm').map(([logicalId, resource]) => {
    const p = resource.Properties as unknown as AlarmProperties;
    const path = String(resource.Metadata?.['aws:cdk:path'] ?? logicalId);
    const common = {
      name: path.replace(/^[^/]+\//, '').replace(/\/Resource$/, ''),
      threshold: p.Threshold,
      comparison: p.ComparisonOperator,
      evaluationPeriods: p.EvaluationPeriods,
      datapointsToAlarm: p.DatapointsToAlarm ?? p.EvaluationPeriods,
      missingData: p.TreatMissingData ?? 'missing',
    };
    if (p.Metrics) {
      const metrics: Record<string, MetricQuery> = {};
      let expression: string | undefined;
      let periodSeconds = 0;
      for (const entry of p.Metrics) {
        if (entry.MetricStat) {
          const stat = entry.MetricStat;
          metrics[entry.Id] = {
            namespace: stat.Metric.Namespace,
            metricName: stat.Metric.MetricName,
            dimensions: dimensionsOf(stat.Metric.Dimensions),
            statistic: stat.Stat,
            periodSeconds: stat.Period,
          };
          periodSeconds = Math.max(periodSeconds, stat.Period);
        } else if (entry.Expression && entry.ReturnData !== false) {
          expression = entry.Expression;
        }
      }
      return { ...common, expression, metrics, periodSeconds };
    }
    if (!p.Namespace || !p.MetricName || !p.Period || !(p.Statistic ?? p.ExtendedStatistic)) {
      throw new Error(`alarm ${logicalId} has neither a metric nor metric math the rig can read`);
    }
    return {
      ...common,
      periodSeconds: p.Period,
      metrics: {
        m: {
          namespace: p.Namespace,
          metricName: p.MetricName,
          dimensions: dimensionsOf(p.Dimensions),
          statistic: String(p.Statistic ?? p.ExtendedStatistic),
          periodSeconds: p.Period,
        },
      },
    };
  });
}
