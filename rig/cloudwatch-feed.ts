/**
 * What AWS publishes to CloudWatch around the cluster, played on the rig at a
 * chosen pace: the scheduled cluster-metrics function (its EMF lines read off
 * this process's stdout, as Lambda's log stream would carry them), the
 * nodes' collectors sped up to the same pace, EC2's status checks (a node
 * whose init is gone fails its instance check), the NLB's healthy targets
 * per target group, and Step Functions' failed, timed-out and aborted
 * executions. The alarms themselves are read from the template (alarm-watch.ts).
 */
import type { RigCluster } from './cluster';
import { bundledHandler, Handler, invocationContext } from './lambdas';
import { listenersWithGroups } from './listeners';
import type { AlarmDefinition } from './alarm-definitions';
import { ACCOUNT, REGION } from './local-aws/server';
import { resolveIntrinsics, resourcesOfType } from './template';

const MINUTE_RULE = /^rate\(1 minute\)$/;
const COLLECTOR_OVERRIDES = '/etc/default/pem-ha-metrics';

export interface FeedOptions {
  /** How long one 60 s CloudWatch period lasts on the rig. */
  readonly periodSeconds: number;
  /** The template's alarms: which dimensions the AWS metrics must carry. */
  readonly alarms: readonly AlarmDefinition[];
}

export class CloudWatchFeed {
  private timer?: NodeJS.Timeout;
  private restoreStdout?: () => void;
  private publisher?: { handler: Handler; arn: string; properties: Record<string, unknown> };
  private executionsSeen = new Set<string>();
  /** The collectors' pace before the feed sped them up. */
  private restoredInterval = '';
  private restoredMetricsSetting?: string;
  private ticking = false;

  constructor(
    private readonly rig: RigCluster,
    private readonly options: FeedOptions,
  ) {}

  /** Speeds the collectors up, starts reading EMF lines, and publishes every period. */
  async start(): Promise<void> {
    const { periodSeconds } = this.options;
    this.restoredInterval = await this.setCollectorInterval(periodSeconds);
    this.captureEmf();
    // The rig keeps the functions' EMF quiet (serve.ts); while the feed runs it is the point.
    // Powertools reads this whenever it makes a Metrics instance (single metrics too).
    this.restoredMetricsSetting = process.env.POWERTOOLS_METRICS_DISABLED;
    process.env.POWERTOOLS_METRICS_DISABLED = 'false';
    this.publisher = this.loadPublisher();
    this.timer = setInterval(() => void this.tick(), periodSeconds * 1000);
    await this.tick();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.restoreStdout?.();
    this.restoreStdout = undefined;
    process.env.POWERTOOLS_METRICS_DISABLED = this.restoredMetricsSetting;
    await this.setCollectorInterval(this.restoredInterval);
  }

  /** Sets every running collector's pace; returns the one it had (the rig's default). */
  private async setCollectorInterval(seconds: string | number): Promise<string> {
    let previous = '';
    for (const node of this.rig.plan.nodes.filter((n) => n.tier !== 'web')) {
      if (!this.rig.host.isRunning(node.name)) continue;
      const lines = (await this.rig.execOk(node.name, ['cat', COLLECTOR_OVERRIDES])).split('\n');
      previous ||= lines.find((l) => l.startsWith('INTERVAL_SECONDS='))?.split('=')[1] ?? '';
      const kept = lines.filter((line) => line && !line.startsWith('INTERVAL_SECONDS='));
      const pace = seconds === '' ? [] : [`INTERVAL_SECONDS=${seconds}`];
      await this.rig.writeFile(
        node.name,
        COLLECTOR_OVERRIDES,
        [...kept, ...pace, ''].join('\n'),
        '0600',
      );
      await this.rig.execOk(node.name, ['systemctl', 'restart', 'pem-ha-metrics']);
    }
    return previous;
  }

  /** Lambda's log stream: EMF documents become datapoints, the rest is printed as before. */
  private captureEmf(): void {
    const stdout = process.stdout;
    const write = stdout.write.bind(stdout);
    stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
      const text = String(chunk);
      const others = text
        .split('\n')
        .filter((line) => line && !this.rig.aws.metrics.recordEmf(line));
      if (others.length === 0) return true;
      return (write as (...args: unknown[]) => boolean)(`${others.join('\n')}\n`, ...rest);
    }) as typeof stdout.write;
    this.restoreStdout = () => (stdout.write = write);
  }

  /** The function the template's every-minute rule invokes. */
  private loadPublisher() {
    const { template } = this.rig;
    const targets = resourcesOfType(template, 'AWS::Events::Rule')
      .filter(([, rule]) => MINUTE_RULE.test(String(rule.Properties?.ScheduleExpression)))
      .flatMap(([, rule]) => (rule.Properties?.Targets ?? []) as { Arn: unknown }[]);
    const logicalId = (targets[0]?.Arn as { 'Fn::GetAtt'?: [string, string] })?.['Fn::GetAtt']?.[0];
    if (targets.length !== 1 || !logicalId) {
      throw new Error(
        'the template has no single function scheduled every minute to publish metrics',
      );
    }
    const pseudo = { region: REGION, accountId: ACCOUNT };
    const handler = bundledHandler(template, logicalId, {
      assemblyDir: this.rig.assemblyDirectory,
      resolveEnvironment: (variables) =>
        resolveIntrinsics(variables, this.rig.resourceValues, pseudo) as Record<string, string>,
    });
    const arn = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${logicalId}`;
    return { handler, arn, properties: template.Resources[logicalId].Properties ?? {} };
  }

  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const { metrics } = this.rig.aws;
      const put = (
        namespace: string,
        metricName: string,
        dimensions: Record<string, string>,
        value: number,
      ) => metrics.record({ namespace, metricName, dimensions, value, timestamp: Date.now() });
      // EC2: an instance whose node is gone fails its instance status check.
      for (const node of this.rig.plan.nodes) {
        const failed = this.rig.host.isRunning(node.name) ? 0 : 1;
        const instance = { InstanceId: node.instanceId };
        put('AWS/EC2', 'StatusCheckFailed', instance, failed);
        put('AWS/EC2', 'StatusCheckFailed_Instance', instance, failed);
        put('AWS/EC2', 'StatusCheckFailed_System', instance, 0);
        put('AWS/EC2', 'StatusCheckFailed_AttachedEBS', instance, 0);
      }
      // The NLB: healthy targets of each listener's group, under the dimensions the alarms name.
      const health = await this.rig.targetHealth().catch(() => undefined);
      if (health) {
        for (const { listener, groupLogicalId } of listenersWithGroups(this.rig.template, 'TCP')) {
          const healthy = Object.values(health[Number(listener.Port)] ?? {}).filter(
            (status) => status === 'UP',
          ).length;
          for (const query of this.metricQueries('AWS/NetworkELB', 'HealthyHostCount')) {
            if (query.dimensions.TargetGroup?.includes(groupLogicalId)) {
              put(query.namespace, query.metricName, { ...query.dimensions }, healthy);
            }
          }
        }
      }
      // Step Functions: each execution that ended badly, once.
      for (const execution of this.rig.aws.executions.list()) {
        const metricName = EXECUTION_METRICS[execution.status];
        if (!metricName || this.executionsSeen.has(execution.executionArn)) continue;
        this.executionsSeen.add(execution.executionArn);
        put('AWS/States', metricName, { StateMachineArn: execution.stateMachineArn }, 1);
      }
      // The scheduled publisher, as EventBridge invokes it (its errors are its heartbeat's business).
      if (this.publisher) {
        const { handler, arn, properties } = this.publisher;
        await handler(
          { 'detail-type': 'Scheduled Event' },
          invocationContext(arn, properties),
        ).catch((error: Error) =>
          this.rig.log(`cluster-metrics function failed: ${error.message}`),
        );
      }
    } finally {
      this.ticking = false;
    }
  }

  private metricQueries(namespace: string, metricName: string) {
    return this.options.alarms
      .flatMap((alarm) => Object.values(alarm.metrics))
      .filter((q) => q.namespace === namespace && q.metricName === metricName);
  }
}

const EXECUTION_METRICS: Partial<Record<string, string>> = {
  FAILED: 'ExecutionsFailed',
  TIMED_OUT: 'ExecutionsTimedOut',
  ABORTED: 'ExecutionsAborted',
};
