/**
 * Rolling-upgrade figures on the cluster built from the synthesized
 * artifacts (the local rig): the runbook's total duration and the write
 * unavailability it causes, through the write endpoint and through the
 * multi-host connection string, next to one planned switchover measured on
 * the same rig just before. The rig starts at the older PostgreSQL 15 minor
 * and upgrades to the newer one from its local apt repository (a real
 * package change), with Patroni's default timing as deployed, once with the
 * template's NLB check timing and once with fast checks.
 *
 *   npm run bench:upgrade -- [--runs 1]
 *
 * The NLB model is HAProxy with the target groups' checks; a real NLB keeps
 * routing new connections for a while after a target turns unhealthy, which
 * is not modelled (see bench/failover.ts).
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { rigPostgresVersions } from '../rig/apt';
import { RigCluster } from '../rig/cluster';
import { waitForHealthyReplication } from '../rig/patroni';
import {
  endpointWriter,
  leader,
  multiHostWriter,
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
const RIG = 'bupg';

/** Longest gap, and the time spent in gaps over 1 s (a write every 100 ms otherwise). */
function unavailability(prober: Prober, from: number, to: number) {
  const gaps = prober.gaps(from, to);
  return {
    longest: Math.max(0, ...gaps),
    total: gaps.filter((g) => g > 1).reduce((sum, g) => sum + g, 0),
  };
}

async function benchmarkRun(
  scale: number,
  label: string,
  record: (key: string, v: number) => void,
) {
  const { new: target } = rigPostgresVersions();
  await RigCluster.downByName(RIG);
  // Debian 12 nodes: the only family with two real minors of one major (rig/family.ts).
  const rig = await RigCluster.up({
    name: RIG,
    family: 'debian-12',
    vpcCidr: '10.52.0.0/16',
    checkScale: scale,
  });
  try {
    const client = new Client(rig.applicationConnection());
    await client.connect();
    await client.query(
      'CREATE TABLE IF NOT EXISTS bench_probe (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())',
    );
    await client.end();
    const probers = {
      endpoint: new Prober(endpointWriter(rig)),
      multiHost: new Prober(multiHostWriter(rig)),
    };
    try {
      // One planned switchover, for comparison.
      await waitForHealthyReplication(rig);
      await sleep(2000);
      const before = Date.now();
      await switchover(rig, await leader(rig));
      await rig.waitForEndpoints(180_000);
      await waitForHealthyReplication(rig);
      const between = Date.now();
      // Let every prober land a write after the window closes.
      await sleep(3000);
      for (const [name, prober] of Object.entries(probers)) {
        record(
          `one planned switchover: longest write gap, ${name}, ${label}`,
          unavailability(prober, before, between).longest,
        );
      }
      // The whole upgrade.
      const started = Date.now();
      const { durationMs } = await rig.upgrade({ component: 'postgresql', version: target });
      const ended = Date.now();
      await sleep(3000);
      record(`upgrade: total runbook duration, ${label}`, durationMs / 1000);
      for (const [name, prober] of Object.entries(probers)) {
        const gap = unavailability(prober, started, ended);
        record(`upgrade: longest write gap, ${name}, ${label}`, gap.longest);
        record(`upgrade: total write unavailability (gaps > 1 s), ${name}, ${label}`, gap.total);
      }
    } finally {
      await Promise.all(Object.values(probers).map((p) => p.stop()));
    }
  } finally {
    await rig.down();
  }
}

async function main() {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '1' } } });
  const runs = runsOption(values.runs);
  const versions = rigPostgresVersions();
  console.log(
    `pem-ha rolling-upgrade benchmark: PostgreSQL ${versions.old} -> ${versions.new}, ${runs} run(s) per check timing on ${cpus().length} cores\n`,
  );
  const results = new Map<string, number[]>();
  const record = (key: string, value: number) => {
    console.log(`  ${key}: ${value.toFixed(1)} s`);
    results.set(key, [...(results.get(key) ?? []), value]);
  };
  for (const check of CHECKS) {
    for (let run = 1; run <= runs; run++) {
      console.log(`${check.label}: run ${run} of ${runs}`);
      await benchmarkRun(check.scale, check.label, record);
    }
  }
  printTable(results);
}

main().catch(async (error: Error) => {
  console.error(`bench:upgrade: ${error.message}`);
  await RigCluster.downByName(RIG).catch(() => undefined);
  process.exit(1);
});
