/**
 * CloudWatch's PutMetricData (AWS query protocol, as botocore and the nodes'
 * collectors send it) and the EMF lines functions print: both become
 * datapoints the rig can read back, as CloudWatch would store them.
 */
import { element, indexes } from './query';
import { AwsError } from './ssm';

export const CLOUDWATCH_VERSION = '2010-08-01';
const XMLNS = `http://monitoring.amazonaws.com/doc/${CLOUDWATCH_VERSION}/`;

export interface Datapoint {
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Readonly<Record<string, string>>;
  readonly value: number;
  /** Epoch milliseconds. */
  readonly timestamp: number;
}

export class LocalMetrics {
  private readonly points: Datapoint[] = [];

  /** Every datapoint recorded, oldest first. */
  all(): readonly Datapoint[] {
    return this.points;
  }

  /** Every datapoint of `metricName` whose dimensions include `dimensions`. */
  datapoints(metricName: string, dimensions: Record<string, string> = {}): Datapoint[] {
    return this.points.filter(
      (point) =>
        point.metricName === metricName &&
        Object.entries(dimensions).every(([name, value]) => point.dimensions[name] === value),
    );
  }

  /** A datapoint AWS itself publishes (EC2, the NLB, Step Functions: the rig plays them). */
  record(point: Datapoint): void {
    this.points.push(point);
  }

  putMetricData(params: URLSearchParams, requestId: string): string {
    const namespace = params.get('Namespace');
    if (!namespace) throw new AwsError('MissingParameter', 'Namespace is required');
    const received = Date.now();
    for (const index of indexes(params, 'MetricData.member')) {
      const field = (name: string) => params.get(`MetricData.member.${index}.${name}`);
      const value = Number(field('Value'));
      const metricName = field('MetricName');
      if (!metricName || !Number.isFinite(value)) {
        throw new AwsError(
          'InvalidParameterValue',
          `MetricData.member.${index} needs a MetricName and a numeric Value`,
        );
      }
      const dimensions: Record<string, string> = {};
      for (const d of indexes(params, `MetricData.member.${index}.Dimensions.member`)) {
        const prefix = `MetricData.member.${index}.Dimensions.member.${d}`;
        dimensions[String(params.get(`${prefix}.Name`))] = String(params.get(`${prefix}.Value`));
      }
      const stamped = field('Timestamp');
      this.points.push({
        namespace,
        metricName,
        dimensions,
        value,
        timestamp: stamped ? Date.parse(stamped) : received,
      });
    }
    return `<PutMetricDataResponse xmlns="${XMLNS}">${element('ResponseMetadata', [
      element('RequestId', requestId),
    ])}</PutMetricDataResponse>`;
  }

  /**
   * One line a function printed: when it is an EMF document, its metrics are
   * stored (under every dimension set it names) and true is returned.
   */
  recordEmf(line: string): boolean {
    if (!line.includes('"CloudWatchMetrics"')) return false;
    let document: EmfDocument;
    try {
      document = JSON.parse(line) as EmfDocument;
    } catch {
      return false;
    }
    const directives = document._aws?.CloudWatchMetrics;
    if (!Array.isArray(directives)) return false;
    const timestamp = Number(document._aws?.Timestamp ?? Date.now());
    for (const directive of directives) {
      for (const set of directive.Dimensions ?? [[]]) {
        const dimensions = Object.fromEntries(
          set.map((name: string) => [name, String(document[name])]),
        );
        for (const metric of directive.Metrics ?? []) {
          const raw = document[metric.Name];
          for (const value of Array.isArray(raw) ? raw : [raw]) {
            this.points.push({
              namespace: directive.Namespace,
              metricName: metric.Name,
              dimensions,
              value: Number(value),
              timestamp,
            });
          }
        }
      }
    }
    return true;
  }
}

interface EmfDocument {
  readonly _aws?: {
    readonly Timestamp?: number;
    readonly CloudWatchMetrics?: readonly {
      readonly Namespace: string;
      readonly Dimensions?: readonly (readonly string[])[];
      readonly Metrics?: readonly { readonly Name: string }[];
    }[];
  };
  readonly [field: string]: unknown;
}
