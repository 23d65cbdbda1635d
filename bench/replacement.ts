/**
 * How long a node takes to come back, on the cluster built from the
 * synthesized artifacts, with a database of about 2 GB and a full backup in
 * the repository (so a blank replica clones from it):
 *
 * - a replica through the node replacement runbook (EC2's root volume swap
 *   on the rig, its data volume kept): from the start of the runbook to
 *   streaming;
 * - a replica whose instance and data volume were lost (a fresh root and a
 *   blank volume at its address): from the bootstrap's start to streaming, a
 *   clone included;
 * - an etcd member through the replacement runbook: to three started,
 *   healthy members.
 *
 *   npm run bench:replacement -- [--scale 135] [--runs 1]
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { RigCluster } from '../rig/cluster';
import { waitForHealthyReplication } from '../rig/patroni';
import { etcdMembers, nodeQueryOn } from '../test/helpers/rig';
import { leader, pgbench, printTable, runsOption } from './probes';

const RIG = 'brep';
const MB = 1024 * 1024;

async function benchmark(scale: number, runs: number) {
  const log = (m: string) => console.log(`[${new Date().toISOString()}] ${m}`);
  await RigCluster.downByName(RIG);
  const rig = await RigCluster.up({ name: RIG, vpcCidr: '10.54.0.0/16', fastPatroni: true });
  const results = new Map<string, number[]>();
  const record = (key: string, started: number) =>
    results.set(key, [...(results.get(key) ?? []), (Date.now() - started) / 1000]);
  try {
    const primary = await leader(rig);
    log(`pgbench -i -s ${scale} on ${primary}`);
    await pgbench(rig, primary, ['-i', '-q', '-s', String(scale)], 3_600_000);
    const bytes = Number(
      await nodeQueryOn(rig, primary, 'SELECT pg_database_size(current_database())'),
    );
    log(`database: ${(bytes / MB).toFixed(0)} MB; full backup (a blank replica clones from it)`);
    await rig.backup('full');
    for (let run = 1; run <= runs; run++) {
      const replica = (await waitForHealthyReplication(rig)).find((m) => m.role !== 'leader')!.name;
      log(`run ${run}: ${replica} replaced by the runbook, its data volume kept`);
      let started = Date.now();
      await rig.replace(replica);
      await waitForHealthyReplication(rig, 3_600_000);
      record('replica, runbook, data volume kept', started);

      log(`run ${run}: ${replica}'s instance and data volume lost`);
      await rig.replaceInstance(replica, { newDataVolume: true });
      started = Date.now();
      await rig.bootstrap();
      await waitForHealthyReplication(rig, 3_600_000);
      record(`replica, blank volume (re-clone of ${(bytes / MB).toFixed(0)} MB)`, started);

      log(`run ${run}: etcd-3 replaced by the runbook`);
      started = Date.now();
      await rig.replace('etcd-3');
      const members = await etcdMembers(rig);
      if (members.filter((m) => m.startsWith('started ')).length !== 3)
        throw new Error(`etcd members after the replacement: ${members.join(', ')}`);
      record('etcd member, runbook', started);
    }
    return results;
  } finally {
    await rig.down();
  }
}

async function main() {
  const { values } = parseArgs({
    options: { scale: { type: 'string', default: '135' }, runs: { type: 'string', default: '1' } },
  });
  const scale = Number(values.scale);
  if (!Number.isInteger(scale) || scale < 1 || scale > 1000)
    throw new Error(`--scale must be an integer from 1 to 1000; got ${values.scale}`);
  const runs = runsOption(values.runs);
  console.log(`${cpus().length} cores; pgbench scale ${scale}; ${runs} run(s)`);
  printTable(
    await benchmark(scale, runs),
    '\nSeconds from the start of the runbook (or, for a lost volume, the bootstrap) to the node serving again',
  );
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
