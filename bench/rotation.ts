/**
 * What a full certificate rotation costs on the cluster built from the
 * synthesized artifacts (the local rig): how long the rotation runbook takes
 * to renew every certificate, what a steady client sees through the write
 * endpoint during it versus a quiet baseline of the same length (failed
 * queries, p50/p99 latency on one long-lived connection), and what the NLB's
 * health checks see on Patroni's REST port (new HTTPS connection each time:
 * failed handshakes and resets).
 *
 *   npm run bench:rotation -- [--runs 3] [--fast]
 */
import { request } from 'node:https';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { RigCluster } from '../rig/cluster';
import { runsOption, sleep } from './probes';

interface Window {
  queries: number;
  failedQueries: number;
  latenciesMs: number[];
  checks: number;
  failedChecks: number;
}

const emptyWindow = (): Window => ({
  queries: 0,
  failedQueries: 0,
  latenciesMs: [],
  checks: 0,
  failedChecks: 0,
});

/** One long-lived connection through the write endpoint, a query every 20 ms. */
async function steadyClient(rig: RigCluster, window: () => Window, running: () => boolean) {
  const client = new Client({ ...rig.applicationConnection(), query_timeout: 5000 });
  client.on('error', () => void window().failedQueries++);
  await client.connect();
  for (let i = 0; running() && i < 1_000_000; i++) {
    const started = process.hrtime.bigint();
    try {
      await client.query('SELECT 1');
      window().queries++;
      window().latenciesMs.push(Number(process.hrtime.bigint() - started) / 1e6);
    } catch {
      window().failedQueries++;
    }
    await sleep(20);
  }
  await client.end().catch(() => undefined);
}

/** GET /primary on every backend's REST port like the NLB: a new TLS connection each time. */
function healthCheck(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: address,
        port: 8008,
        path: '/primary',
        rejectUnauthorized: false,
        timeout: 5000,
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200 || res.statusCode === 503));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
    req.end();
  });
}

async function healthChecker(rig: RigCluster, window: () => Window, running: () => boolean) {
  const backends = rig.plan.nodes.filter((n) => n.tier === 'backend');
  for (let i = 0; running() && i < 1_000_000; i++) {
    for (const ok of await Promise.all(backends.map((n) => healthCheck(n.address)))) {
      window().checks++;
      if (!ok) window().failedChecks++;
    }
    await sleep(200);
  }
}

const percentile = (values: number[], p: number) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
};
const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];

async function main() {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '3' }, fast: { type: 'boolean', default: false } },
  });
  const runs = runsOption(values.runs);
  console.log(
    `pem-ha rotation benchmark: ${runs} full rotation(s) on ${cpus().length} cores, ` +
      `${values.fast ? 'fast' : 'default'} Patroni timing\n`,
  );
  await RigCluster.downByName('brot');
  const rig = await RigCluster.up({
    name: 'brot',
    vpcCidr: '10.49.0.0/16',
    fastPatroni: values.fast,
  });
  const rows: { seconds: number; baseline: Window; rotation: Window }[] = [];
  try {
    for (let run = 1; run <= runs; run++) {
      let current = emptyWindow();
      let running = true;
      const loops = Promise.all([
        steadyClient(
          rig,
          () => current,
          () => running,
        ),
        healthChecker(
          rig,
          () => current,
          () => running,
        ),
      ]);
      const started = Date.now();
      const { durationMs } = await rig.rotateCertificates({ input: { renewBeforeDays: 3650 } });
      const rotation = current;
      // The quiet baseline: as long as the rotation took, nothing else happening.
      current = emptyWindow();
      await sleep(Date.now() - started);
      const baseline = current;
      running = false;
      await loops;
      rows.push({ seconds: durationMs / 1000, baseline, rotation });
      console.log(
        `run ${run}: rotation ${(durationMs / 1000).toFixed(1)} s; queries ${rotation.queries} ` +
          `(${rotation.failedQueries} failed, p99 ${percentile(rotation.latenciesMs, 99).toFixed(1)} ms; ` +
          `baseline p99 ${percentile(baseline.latenciesMs, 99).toFixed(1)} ms); ` +
          `health checks ${rotation.checks} (${rotation.failedChecks} failed)`,
      );
    }
  } finally {
    await rig.down();
  }
  const column = (pick: (row: (typeof rows)[number]) => number) => {
    const samples = rows.map(pick);
    return `${median(samples).toFixed(1)} | ${Math.min(...samples).toFixed(1)} | ${Math.max(...samples).toFixed(1)}`;
  };
  console.log('\n| measure | median | min | max |\n| --- | ---: | ---: | ---: |');
  console.log(
    `| full rotation, ${rig.plan.nodes.length} nodes one at a time (s) | ${column((r) => r.seconds)} |`,
  );
  console.log(`| failed queries, baseline | ${column((r) => r.baseline.failedQueries)} |`);
  console.log(`| failed queries, during rotation | ${column((r) => r.rotation.failedQueries)} |`);
  for (const p of [50, 99]) {
    console.log(
      `| p${p} query latency, baseline (ms) | ${column((r) => percentile(r.baseline.latenciesMs, p))} |`,
    );
    console.log(
      `| p${p} query latency, during rotation (ms) | ${column((r) => percentile(r.rotation.latenciesMs, p))} |`,
    );
  }
  console.log(
    `| failed health checks on 8008, baseline | ${column((r) => r.baseline.failedChecks)} |`,
  );
  console.log(
    `| failed health checks on 8008, during rotation | ${column((r) => r.rotation.failedChecks)} |`,
  );
  console.log(`| health checks per window | ${column((r) => r.rotation.checks)} |`);
}

main().catch(async (error: Error) => {
  console.error(`bench:rotation: ${error.message}`);
  await RigCluster.downByName('brot').catch(() => undefined);
  process.exit(1);
});
