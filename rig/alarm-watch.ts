/**
 * The template's alarms evaluated continuously over what the rig records
 * (cloudwatch-feed.ts), at a chosen pace: tests wait for an alarm to fire or
 * clear and read how long it took. No threshold lives here: each comes from
 * the synthesized alarm.
 */
import type { RigCluster } from './cluster';
import { alarmDefinitions, AlarmDefinition } from './alarm-definitions';
import { AlarmState, evaluateAlarm, Evaluation } from './alarm-evaluator';
import { CloudWatchFeed } from './cloudwatch-feed';
import { ACCOUNT, REGION } from './local-aws/server';

/**
 * The namespaces the rig publishes continuously. The backup health and
 * certificate alarms are fed by runbooks on their own schedules (every 5
 * minutes, daily), which the rig runs only when a test starts them.
 */
const FED_ON_THE_RIG = new Set(['PemHa/Cluster', 'AWS/EC2', 'AWS/NetworkELB', 'AWS/States']);

export class AlarmWatch {
  private constructor(
    private readonly rig: RigCluster,
    private readonly feed: CloudWatchFeed,
    readonly alarms: readonly AlarmDefinition[],
    /** Rig seconds per CloudWatch second (a 60 s period lasts 60 × scale). */
    readonly scale: number,
  ) {}

  /** Starts feeding CloudWatch's stand-in; one 60 s period lasts `periodSeconds` here. */
  static async start(rig: RigCluster, periodSeconds: number): Promise<AlarmWatch> {
    const pseudo = { region: REGION, accountId: ACCOUNT };
    const alarms = alarmDefinitions(rig.template, rig.resourceValues, pseudo);
    const feed = new CloudWatchFeed(rig, { periodSeconds, alarms });
    await feed.start();
    return new AlarmWatch(rig, feed, alarms, periodSeconds / 60);
  }

  async stop(): Promise<void> {
    await this.feed.stop();
  }

  /** The alarms whose every metric the rig publishes on its own. */
  get watched(): AlarmDefinition[] {
    return this.alarms.filter((alarm) =>
      Object.values(alarm.metrics).every((q) => FED_ON_THE_RIG.has(q.namespace)),
    );
  }

  alarm(name: string): AlarmDefinition {
    const found = this.alarms.find((a) => a.name === name);
    if (!found) throw new Error(`the template has no alarm ${name}`);
    return found;
  }

  evaluate(name: string, now = Date.now()): Evaluation {
    return evaluateAlarm(this.alarm(name), this.rig.aws.metrics.all(), now, this.scale);
  }

  /**
   * Waits (polling twice a second, at most `timeoutMs`) until alarm `name`
   * has been in `state` at some moment since `since`, and resolves with the
   * milliseconds from `since` to the first such moment. Moments are evaluated
   * a second apart over the datapoints recorded by then, so an alarm that
   * fired and cleared before anyone looked (one bad minute) is still seen.
   */
  async waitFor(
    name: string,
    state: AlarmState,
    since: number,
    timeoutMs: number,
  ): Promise<number> {
    const alarm = this.alarm(name);
    const deadline = Date.now() + timeoutMs;
    let moment = since;
    for (;;) {
      const now = Date.now();
      for (; moment <= now; moment += 1000) {
        const { state: then } = evaluateAlarm(
          alarm,
          this.rig.aws.metrics.all(),
          moment,
          this.scale,
        );
        if (then === state) return moment - since;
      }
      if (now > deadline) {
        const evaluation = this.evaluate(name, now);
        throw new Error(
          `${name} was not ${state} in the ${timeoutMs} ms since the fault; it is ${evaluation.state} (periods, newest first: ${JSON.stringify(evaluation.values)})`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  /** Every alarm the rig feeds, with its state now. */
  states(now = Date.now()): Record<string, AlarmState> {
    return Object.fromEntries(
      this.watched.map((alarm) => [
        alarm.name,
        evaluateAlarm(alarm, this.rig.aws.metrics.all(), now, this.scale).state,
      ]),
    );
  }

  /** Waits until every alarm the rig feeds is OK; fails naming the others and their periods. */
  async allOk(timeoutMs: number): Promise<number> {
    const started = Date.now();
    const deadline = started + timeoutMs;
    for (;;) {
      const notOk = Object.entries(this.states()).filter(([, state]) => state !== 'OK');
      if (notOk.length === 0) return Date.now() - started;
      if (Date.now() > deadline) {
        const detail = notOk
          .map(([name, state]) => `${name} ${state} ${JSON.stringify(this.evaluate(name).values)}`)
          .join('; ');
        throw new Error(`not every alarm is OK after ${timeoutMs} ms: ${detail}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}
