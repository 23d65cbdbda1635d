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
 *   npm run bench:backup -- [--scale 150] [--load-minutes 5] [--archive-timeouts 60,300]
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { RigCluster } from '../rig/cluster';
import { waitForHealthyReplication } from '../rig/patroni';
import { endpointWriter, leader, median, Prober, sleep } from './probes';

const RIG = 'bbak';
const MB = 1024 * 1024;
const asPostgres = (...argv: string[]) => ['runuser', '-u', 'postgres', '--', ...argv];
const PGBENCH = '/usr/lib/postgresql/17/bin/pgbench';

async function sql(rig: RigCluster, node: string, text: string): Promise<string> {
  const out = await rig.execOk(
    node,
    asPostgres(
      'psql',
      '-h',
      '/var/run/postgresql',
      '-U',
      'patroni_super',
      '-XAtq',
      '-d',
      'postgres',
      '-c',
      text,
    ),
  );
  return out.trim();
}

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
    const age = await sql(
      rig,
      primary,
      'SELECT coalesce(extract(epoch FROM now() - last_archived_time), -1) FROM pg_stat_archiver',
    );
    if (Number(age) >= 0) samples.push(Number(age));
    await sleep(5_000);
  }
  return samples;
}

async function benchmark(archiveTimeout: number, scale: number, loadMinutes: number) {
  const log = (m: string) => console.log(`[archive_timeout ${archiveTimeout}] ${m}`);
  await RigCluster.downByName(RIG);
  const rig = await RigCluster.up({
    name: RIG,
    vpcCidr: '10.53.0.0/16',
    fastPatroni: true,
    pem: false,
    extra: { archiveTimeoutSeconds: String(archiveTimeout) },
  });
  try {
    await waitForHealthyReplication(rig);
    const primary = await leader(rig);
    log(`pgbench -i -s ${scale} on ${primary}`);
    await rig.execOk(
      primary,
      asPostgres(
        PGBENCH,
        '-h',
        '/var/run/postgresql',
        '-U',
        'patroni_super',
        '-i',
        '-q',
        '-s',
        String(scale),
        'postgres',
      ),
      undefined,
      3_600_000,
    );
    const bytes = Number(await sql(rig, primary, 'SELECT pg_database_size(current_database())'));
    log(`database: ${(bytes / MB).toFixed(0)} MB`);

    const full = await rig.backup('full');
    const fullInfo = (await backups(rig, primary)).at(-1)!;

    // A steady load: 50 transactions a second, as a busy PEM backend writes.
    const load = rig.execOk(
      primary,
      asPostgres(
        PGBENCH,
        '-h',
        '/var/run/postgresql',
        '-U',
        'patroni_super',
        '-c',
        '2',
        '-R',
        '50',
        '-T',
        String(loadMinutes * 60),
        'postgres',
      ),
      undefined,
      loadMinutes * 60_000 + 120_000,
    );
    const rpo = await rpoSamples(rig, primary, load);
    await load;

    const diff = await rig.backup('diff');
    const diffInfo = (await backups(rig, primary)).at(-1)!;

    // A replica rebuilt from the repository (the suite's wipe, timed here).
    const replica = (await waitForHealthyReplication(rig)).find((m) => m.role !== 'leader')!.name;
    const rebuildStart = Date.now();
    await rig.execOk(replica, ['systemctl', 'stop', 'patroni'], undefined, 120_000);
    await rig.execOk(replica, [
      'sh',
      '-c',
      'rm -rf /var/lib/postgresql/17/pem-ha /var/lib/pem-ha/patroni-member',
    ]);
    await rig.execOk(replica, ['systemctl', 'start', 'patroni']);
    await waitForHealthyReplication(rig, 3_600_000);
    const rebuildSeconds = (Date.now() - rebuildStart) / 1000;

    // The drill: restore to the end of the archive; writes probed through the write endpoint.
    const prober = new Prober(endpointWriter(rig));
    const drillStart = Date.now();
    const drill = await rig.restore({ confirm: 'pem-ha', latest: true });
    await prober.stop();
    // The first write after the longest gap, which the restore's stop opened.
    const times = prober.successTimes().filter((t) => t >= drillStart);
    const gapEnd = times.reduce(
      (best, t, i) =>
        i > 0 && t - times[i - 1] > best.gap ? { gap: t - times[i - 1], at: t } : best,
      { gap: 0, at: NaN },
    );
    const firstWrite = gapEnd.at;
    const seconds = (ms: number) => ms / 1000;
    return {
      'database (MB)': bytes / MB,
      'RPO median (s)': median(rpo),
      'RPO worst (s)': Math.max(...rpo),
      'full backup (s)': seconds(full.durationMs),
      'full backup (MB/s of database)': fullInfo.info.size / MB / seconds(full.durationMs),
      'full backup in repository (MB)': fullInfo.info.repository.delta / MB,
      'diff backup (s)': seconds(diff.durationMs),
      'diff backup (MB/s of changes)': diffInfo.info.delta / MB / seconds(diff.durationMs),
      'replica from repository (s)': rebuildSeconds,
      'replica from repository (MB/s)': bytes / MB / rebuildSeconds,
      'restore drill: start to writes accepted (s)': seconds(firstWrite - drillStart),
      'restore drill: whole runbook (s)': seconds(drill.durationMs),
    };
  } finally {
    await rig.down();
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      scale: { type: 'string', default: '150' },
      'load-minutes': { type: 'string', default: '5' },
      'archive-timeouts': { type: 'string', default: '60' },
    },
  });
  const timeouts = values['archive-timeouts']!.split(',').map(Number);
  console.log(`${cpus().length} cores; pgbench scale ${values.scale}`);
  for (const timeout of timeouts) {
    const figures = await benchmark(timeout, Number(values.scale), Number(values['load-minutes']));
    console.log(`\narchive_timeout ${timeout} s`);
    for (const [name, value] of Object.entries(figures)) {
      console.log(`  ${name.padEnd(46)} ${value.toFixed(1)}`);
    }
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
