/**
 * Failover figures of the cluster built from the synthesized artifacts on
 * this machine (the local rig): write unavailability through the write
 * endpoint for a crash of the primary, a network partition of the primary and
 * a planned switchover, and the bring-up time; for Patroni's default and fast
 * timing profiles, each with the template's NLB check timing and with fast
 * checks. Prints medians (and min/max) of --runs runs.
 *
 *   npm run bench:failover -- [--runs 3]
 *
 * The NLB model: HAProxy with the target groups' health checks (HTTPS GET
 * /primary on 8008, interval and thresholds from the template). A real NLB
 * also keeps routing new connections for tens of seconds after a target turns
 * unhealthy; that delay is not modelled, so these are lower bounds for the NLB
 * path and close to what the multi-host connection string gives.
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { RigCluster } from '../rig/cluster';
import {
  describeMembers,
  healPartition,
  patroniMembers,
  waitForHealthyReplication,
} from '../rig/patroni';

const CHECKS = [
  { label: 'template NLB checks (5 s x 2)', scale: 1 },
  { label: 'fast checks (1 s x 2)', scale: 0.2 },
] as const;
const PROFILES = [
  { label: 'Patroni defaults (ttl 30, loop_wait 10, retry_timeout 10)', fast: false },
  { label: 'fast Patroni (ttl 10, loop_wait 2, retry_timeout 3)', fast: true },
] as const;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Writes through the write endpoint every 100 ms, each on a new connection, recording successes. */
class Prober {
  private readonly successes: { startedAt: number }[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(private readonly rig: RigCluster) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    for (let i = 0; this.running && i < 20_000; i++) {
      const startedAt = Date.now();
      const client = new Client({
        ...this.rig.superuserConnection(),
        connectionTimeoutMillis: 1000,
        query_timeout: 2000,
      });
      // A server killed mid-session emits 'error' on the idle client: expected here.
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('INSERT INTO bench_probe DEFAULT VALUES');
        this.successes.push({ startedAt });
      } catch {
        // unavailable: the gap is what we measure
      } finally {
        await client.end().catch(() => undefined);
      }
      await sleep(100);
    }
  }

  /**
   * Write unavailability around an event that began at `since` and finished
   * at `eventDone`: the longest gap between the starts of consecutive
   * successful writes, from the last one before `since` to the first one begun
   * after `eventDone` (a switchover request returns only once it is done, and
   * writes keep landing on the old primary until it demotes). Bounded wait.
   */
  async unavailability(since: number, eventDone: number, timeoutMs = 180_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const last = this.successes.findIndex((s) => s.startedAt > eventDone);
      if (last >= 0) {
        let first = this.successes.findIndex((s) => s.startedAt > since);
        first = Math.max(first - 1, 0);
        let gap = 0;
        for (let i = first; i < last; i++) {
          gap = Math.max(gap, this.successes[i + 1].startedAt - this.successes[i].startedAt);
        }
        return gap / 1000;
      }
      await sleep(100);
    }
    throw new Error(`writes did not come back within ${timeoutMs / 1000} s`);
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

/** The leader as Patroni reports it. */
async function leader(rig: RigCluster): Promise<string> {
  const members = await patroniMembers(rig);
  const found = members?.find((m) => m.role === 'leader');
  if (!found) throw new Error(`no backend reports a leader: ${describeMembers(members)}`);
  return found.name;
}

async function measure(
  rig: RigCluster,
  event: (leader: string) => Promise<void>,
  recover: (leader: string) => Promise<void>,
) {
  // Synchronous mode promotes only the recorded standby: start from a cluster that has one.
  await waitForHealthyReplication(rig);
  const current = await leader(rig);
  const prober = new Prober(rig);
  await sleep(1000);
  const at = Date.now();
  await event(current);
  try {
    return await prober.unavailability(at, Date.now());
  } catch (error) {
    throw new Error(
      `${(error as Error).message}; Patroni: ${describeMembers(await patroniMembers(rig))}`,
      { cause: error },
    );
  } finally {
    await prober.stop();
    await recover(current);
    await rig.waitForEndpoints(180_000);
  }
}

async function switchover(rig: RigCluster, current: string): Promise<void> {
  const password = JSON.parse(rig.aws.secretValue('pem-ha/patroniRestApi')!).password;
  const address = rig.plan.nodes.find((n) => n.name === current)!.address;
  // In synchronous mode only the synchronous standby may take over.
  const members = (await patroniMembers(rig)) ?? [];
  const candidate =
    members.find((m) => m.role === 'sync_standby') ?? members.find((m) => m.role === 'replica');
  if (!candidate) throw new Error(`no standby to switch over to: ${describeMembers(members)}`);
  // curl reads its options on stdin, so the password is on no command line.
  const config = [
    `url = "https://${address}:8008/switchover"`,
    `user = "patroni_api:${password}"`,
    'cacert = "/etc/pem-ha/tls/current/ca.crt"',
    'request = "POST"',
    `data = "{\\"leader\\": \\"${current}\\", \\"candidate\\": \\"${candidate.name}\\"}"`,
    'fail',
  ].join('\n');
  await rig.execOk(current, ['curl', '-sS', '-K', '-'], config);
}

async function benchmarkRun(fast: boolean, results: Map<string, number[]>) {
  const record = (key: string, value: number) => {
    console.log(`  ${key}: ${value.toFixed(1)} s`);
    results.set(key, [...(results.get(key) ?? []), value]);
  };
  await RigCluster.downByName('bench');
  const started = Date.now();
  const rig = await RigCluster.up({ name: 'bench', fastPatroni: fast, vpcCidr: '10.44.0.0/16' });
  record('bring-up (synth + nodes + bootstrap + endpoints settled)', (Date.now() - started) / 1000);
  try {
    const client = new Client(rig.superuserConnection());
    await client.connect();
    await client.query(
      'CREATE TABLE IF NOT EXISTS bench_probe (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())',
    );
    await client.end();
    for (const check of CHECKS) {
      await rig.setCheckScale(check.scale);
      const gap = async (
        metric: string,
        event: (l: string) => Promise<void>,
        recover: (l: string) => Promise<void>,
      ) => record(`${metric}, ${check.label}`, await measure(rig, event, recover));
      await gap(
        'planned switchover',
        (l) => switchover(rig, l),
        async () => undefined,
      );
      await gap(
        'crash of the primary (every process killed)',
        (l) => rig.host.kill(l),
        (l) => rig.reboot(l),
      );
      await gap(
        'partition of the primary (link cut)',
        (l) => rig.host.setLink(l, false),
        (l) => healPartition(rig, l),
      );
    }
  } finally {
    await rig.down();
  }
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];

async function main() {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 10)
    throw new Error(`--runs must be an integer from 1 to 10; got ${values.runs}`);
  console.log(`pem-ha failover benchmark: ${runs} run(s) per profile on ${cpus().length} cores\n`);
  for (const profile of PROFILES) {
    const results = new Map<string, number[]>();
    for (let run = 1; run <= runs; run++) {
      console.log(`${profile.label}: run ${run} of ${runs}`);
      await benchmarkRun(profile.fast, results);
    }
    console.log(
      `\n${profile.label}\n| measure | median s | min | max | runs |\n| --- | ---: | ---: | ---: | ---: |`,
    );
    for (const [key, samples] of results) {
      console.log(
        `| ${key} | ${median(samples).toFixed(1)} | ${Math.min(...samples).toFixed(1)} | ${Math.max(...samples).toFixed(1)} | ${samples.length} |`,
      );
    }
    console.log('');
  }
}

main().catch(async (error: Error) => {
  console.error(`bench:failover: ${error.message}`);
  await RigCluster.downByName('bench').catch(() => undefined);
  process.exit(1);
});
