/**
 * Backup and restore figures on the cluster built from the synthesized
 * artifacts (the local rig, pgBackRest to the Moto S3 stand-in over TLS):
 *
 * - RPO: now - pg_stat_archiver.last_archived_time on the primary, sampled
 *   every 5 s under a steady pgbench load, for each archive_timeout given;
 * - full and differential backups through the backup runbook, in MB/s of the
 *   database (full) and of what changed (differential);
 * - a replica rebuilt from the repository (Patroni's pgbackrest method);
 * - the restore drill: the point-in-time restore runbook to `latest`, from its
 *   start to the first write accepted through the write endpoint, and to its end.
 *
 *   npm run bench:backup -- [--scale 150] [--load-minutes 5] [--rate 50] [--archive-timeouts 60,30]
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { RigCluster } from '../rig/cluster';
import { waitForHealthyReplication } from '../rig/patroni';
import { nodeQueryOn, wipeAndRebuild } from '../test/helpers/rig';
import { asPostgres, endpointWriter, leader, median, pgbench, Prober, sleep } from './probes';

const RIG = 'bbak';
const MB = 1024 * 1024;

interface BackupInfo {
  label: string;
  type: string;
  timestamp: { start: number; stop: number };
  info: { size: number; delta: number; repository: { size: number; delta: number } };
}

async function backups(rig: RigCluster, node: string): Promise<BackupInfo[]> {
  const out = await rig.execOk(
    node,
    asPostgres('pgbackrest', '--stanza=pem-ha', '--output=json', 'info'),
    undefined,
    120_000,
  );
  return (JSON.parse(out) as { backup: BackupInfo[] }[])[0].backup;
}

/** now - last archived time on the primary, every 5 s while `load` runs. */
async function rpoSamples(rig: RigCluster, primary: string, load: Promise<unknown>) {
  const samples: number[] = [];
  let done = false;
  void load.finally(() => (done = true));
  for (let i = 0; i < 2000 && !done; i += 1) {
    const age = await nodeQueryOn(
      rig,
      primary,
      'SELECT coalesce(extract(epoch FROM now() - last_archived_time), -1) FROM pg_stat_archiver',
    );
    if (Number(age) >= 0) samples.push(Number(age));
    await sleep(5_000);
  }
  return samples;
}

/** archive_timeout on the primary through ALTER SYSTEM (seconds, or DEFAULT for the setting's), reloaded. */
async function setArchiveTimeout(rig: RigCluster, primary: string, value: string) {
  await nodeQueryOn(rig, primary, `ALTER SYSTEM SET archive_timeout TO ${value}`);
  await nodeQueryOn(rig, primary, 'SELECT pg_reload_conf()');
}

/**
 * RPO under a steady load of `rate` transactions a second with archive_timeout
 * at `seconds`: the setting's value for the first, ALTER SYSTEM and a reload
 * for the others (the same parameter, without building a second database).
 * A busy primary fills segments before the timeout; a quiet one does not.
 */
async function rpoWith(
  rig: RigCluster,
  primary: string,
  seconds: number,
  { loadMinutes, rate }: { loadMinutes: number; rate: number },
) {
  await setArchiveTimeout(rig, primary, String(seconds));
  const load = pgbench(
    rig,
    primary,
    ['-c', '2', '-R', String(rate), '-T', String(loadMinutes * 60)],
    loadMinutes * 60_000 + 120_000,
  );
  const samples = await rpoSamples(rig, primary, load);
  await load;
  return samples;
}

async function benchmark(
  archiveTimeouts: number[],
  scale: number,
  load: { loadMinutes: number; rate: number },
) {
  const log = (m: string) => console.log(`[${new Date().toISOString()}] ${m}`);
  await RigCluster.downByName(RIG);
  const rig = await RigCluster.up({
    name: RIG,
    vpcCidr: '10.53.0.0/16',
    fastPatroni: true,
    pem: false,
    extra: { archiveTimeoutSeconds: String(archiveTimeouts[0]) },
  });
  try {
    await waitForHealthyReplication(rig);
    const primary = await leader(rig);
    log(`pgbench -i -s ${scale} on ${primary}`);
    await pgbench(rig, primary, ['-i', '-q', '-s', String(scale)], 3_600_000);
    // The restore drill's prober writes here (created now: restored with the rest).
    await nodeQueryOn(
      rig,
      primary,
      'CREATE TABLE bench_probe (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())',
    );
    const bytes = Number(
      await nodeQueryOn(rig, primary, 'SELECT pg_database_size(current_database())'),
    );
    log(`database: ${(bytes / MB).toFixed(0)} MB; full backup`);
    const full = await rig.backup('full');
    const fullInfo = (await backups(rig, primary)).at(-1)!;

    const rpo = new Map<number, number[]>();
    for (const seconds of archiveTimeouts) {
      log(`${load.loadMinutes} min at ${load.rate} tx/s with archive_timeout ${seconds} s`);
      rpo.set(seconds, await rpoWith(rig, primary, seconds, load));
    }
    await setArchiveTimeout(rig, primary, 'DEFAULT');

    log('differential backup');
    const diff = await rig.backup('diff');
    const diffInfo = (await backups(rig, primary)).at(-1)!;

    log('a replica rebuilt from the repository');
    const replica = (await waitForHealthyReplication(rig)).find((m) => m.role !== 'leader')!.name;
    const rebuildStart = Date.now();
    const rebuildLog = await wipeAndRebuild(rig, replica, 3_600_000);
    const rebuildSeconds = (Date.now() - rebuildStart) / 1000;
    if (!rebuildLog.includes('replica has been created using pgbackrest'))
      throw new Error(`${replica} was not rebuilt from the repository:\n${rebuildLog}`);

    log('restore drill to latest, writes probed through the write endpoint');
    const prober = new Prober(endpointWriter(rig));
    const drillStart = Date.now();
    const drill = await rig.restore({ confirm: rig.plan.clusterName, latest: true });
    await prober.stop();
    // The first write after the longest gap, which the restore's stop opened.
    const times = prober.successTimes().filter((t) => t >= drillStart);
    const gapEnd = times.reduce(
      (best, t, i) =>
        i > 0 && t - times[i - 1] > best.gap ? { gap: t - times[i - 1], at: t } : best,
      { gap: 0, at: NaN },
    );
    const seconds = (ms: number) => ms / 1000;
    const figures: Record<string, number> = {
      'database (MB)': bytes / MB,
      'full backup (s)': seconds(full.durationMs),
      'full backup (MB/s of database)': fullInfo.info.size / MB / seconds(full.durationMs),
      'full backup in repository (MB)': fullInfo.info.repository.delta / MB,
      'diff backup (s)': seconds(diff.durationMs),
      'diff backup (MB/s of changes)': diffInfo.info.delta / MB / seconds(diff.durationMs),
      'replica from repository (s)': rebuildSeconds,
      'replica from repository (MB/s)': bytes / MB / rebuildSeconds,
      'restore drill: start to writes accepted (s)': seconds(gapEnd.at - drillStart),
      'restore drill: whole runbook (s)': seconds(drill.durationMs),
    };
    for (const [timeout, samples] of rpo) {
      figures[`RPO median, archive_timeout ${timeout} s (s)`] = median(samples);
      figures[`RPO worst, archive_timeout ${timeout} s (s)`] = Math.max(...samples);
      figures[`RPO samples, archive_timeout ${timeout} s`] = samples.length;
    }
    return figures;
  } finally {
    await rig.down();
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      scale: { type: 'string', default: '150' },
      'load-minutes': { type: 'string', default: '5' },
      rate: { type: 'string', default: '50' },
      'archive-timeouts': { type: 'string', default: '60,30' },
    },
  });
  const timeouts = values['archive-timeouts']!.split(',').map(Number);
  if (timeouts.some((t) => !Number.isInteger(t) || t < 1 || t > 3600))
    throw new Error(
      `--archive-timeouts must be whole seconds from 1 to 3600, comma-separated; got ${values['archive-timeouts']}`,
    );
  console.log(`${cpus().length} cores; pgbench scale ${values.scale}, ${values.rate} tx/s`);
  const figures = await benchmark(timeouts, Number(values.scale), {
    loadMinutes: Number(values['load-minutes']),
    rate: Number(values.rate),
  });
  console.log('\n| measure | value |\n| --- | ---: |');
  for (const [name, value] of Object.entries(figures)) {
    console.log(`| ${name} | ${value.toFixed(1)} |`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
