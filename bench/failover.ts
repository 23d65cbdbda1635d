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
import {
  endpointWriter,
  leader,
  printTable,
  Prober,
  runsOption,
  sleep,
  switchover,
} from './probes';

const CHECKS = [
  { label: 'template NLB checks (5 s x 2)', scale: 1 },
  { label: 'fast checks (1 s x 2)', scale: 0.2 },
] as const;
const PROFILES = [
  { label: 'Patroni defaults (ttl 30, loop_wait 10, retry_timeout 10)', fast: false },
  { label: 'fast Patroni (ttl 20, loop_wait 2, retry_timeout 9)', fast: true },
] as const;
async function measure(
  rig: RigCluster,
  event: (leader: string) => Promise<void>,
  recover: (leader: string) => Promise<void>,
) {
  // Synchronous mode promotes only the recorded standby: start from a cluster that has one.
  await waitForHealthyReplication(rig);
  const current = await leader(rig);
  const prober = new Prober(endpointWriter(rig));
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
    const client = new Client(rig.applicationConnection());
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

async function main() {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
  const runs = runsOption(values.runs);
  console.log(`pem-ha failover benchmark: ${runs} run(s) per profile on ${cpus().length} cores\n`);
  for (const profile of PROFILES) {
    const results = new Map<string, number[]>();
    for (let run = 1; run <= runs; run++) {
      console.log(`${profile.label}: run ${run} of ${runs}`);
      await benchmarkRun(profile.fast, results);
    }
    printTable(results, `\n${profile.label}`);
    console.log('');
  }
}

main().catch(async (error: Error) => {
  console.error(`bench:failover: ${error.message}`);
  await RigCluster.downByName('bench').catch(() => undefined);
  process.exit(1);
});
