/**
 * The backup repository on the cluster suite's rig (called from
 * cluster.test.ts, which owns the rig and gives it BACKUP_TEST_SETTINGS):
 * pgBackRest on every backend archiving to Moto's S3 server over TLS with
 * instance-role credentials from the IMDS stand-in, the stanza made by the
 * synthesized bootstrap, replicas rebuilt from the repository (or from the
 * primary when it is unreachable), point-in-time restore, then the alarms and
 * the full disk. They run before any other test takes a backup.
 */
import { RigCluster } from '../../rig/cluster';
import { alarmTests, ALARM_TEST_SETTINGS } from './alarms';
import { fullDiskTests } from './full-disk';
import { STORAGE_NODE } from '../../rig/object-storage/object-storage';
import { patroniMembers, waitForHealthyReplication } from '../../rig/patroni';
import {
  alarmThreshold,
  endpointQueryOn,
  eventually,
  lostWrites,
  nodeQueryOn,
  sleep,
  startEndpointWriter,
  wipeAndRebuild,
} from '../helpers/rig';

let rig: RigCluster;
const STANZA = 'pem-ha';
const BACKENDS = ['backend-1', 'backend-2', 'backend-3'];
const ARCHIVE_AGE_ALARM_SECONDS = 30;

/** The rig's settings these tests need: alarm thresholds low enough for a test. */
export const BACKUP_TEST_SETTINGS = {
  // Low enough for a 45-second outage to cross it.
  archiveAgeAlarmSeconds: String(ARCHIVE_AGE_ALARM_SECONDS),
  ...ALARM_TEST_SETTINGS,
};
const nodeQuery = (node: string, text: string) => nodeQueryOn(rig, node, text);
/** A command as the node's postgres user, as Patroni and archive_command run. */
const asPostgres = (...argv: string[]) => ['runuser', '-u', 'postgres', '--', ...argv];

interface StanzaInfo {
  status: { code: number; message: string };
  backup: { type: string }[];
  archive: { id: string; database: { id: number }; min: string | null; max: string | null }[];
}

/** pgBackRest's own view of the repository, read from `node` with its instance role. */
async function repositoryInfo(node: string): Promise<StanzaInfo> {
  const stdout = await rig.execOk(
    node,
    asPostgres('pgbackrest', `--stanza=${STANZA}`, '--output=json', 'info'),
    undefined,
    120_000,
  );
  return (JSON.parse(stdout) as StanzaInfo[])[0];
}

async function leader(): Promise<string> {
  const members = await patroniMembers(rig);
  const found = members?.find((m) => m.role === 'leader');
  if (!found) throw new Error('no leader');
  return found.name;
}

/** Switches the current segment on the primary and waits until the repository holds it. */
async function archiveCurrentSegment(primary: string): Promise<string> {
  // A switch with nothing written since the last one is a no-op: write first.
  await nodeQuery(
    primary,
    'CREATE TABLE IF NOT EXISTS wal_probe (at timestamptz); INSERT INTO wal_probe VALUES (now())',
  );
  const segment = await nodeQuery(primary, 'SELECT pg_walfile_name(pg_current_wal_lsn())');
  await nodeQuery(primary, 'SELECT pg_switch_wal()');
  await eventually(`segment ${segment} in the repository`, 90_000, async () => {
    const max = (await repositoryInfo(primary)).archive.at(-1)?.max ?? '';
    if (max < segment) throw new Error(`archive ends at ${max || 'nothing'}`);
  });
  return segment;
}

/** The WAL segments in the repository (files are `<segment>-<sha1>.<compression>`). */
async function archivedSegments(node: string): Promise<Set<string>> {
  const listing = await rig.execOk(
    node,
    asPostgres('pgbackrest', `--stanza=${STANZA}`, 'repo-ls', '--recurse', `archive/${STANZA}`),
    undefined,
    120_000,
  );
  return new Set([...listing.matchAll(/\b([0-9A-F]{24})-[0-9a-f]{40}\b/g)].map((m) => m[1]));
}

// WAL segment names: timeline, then the segment number (16 MiB segments: 256 per log file).
const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');
const timelineOf = (segment: string) => parseInt(segment.slice(0, 8), 16);
const segmentNumber = (segment: string) =>
  parseInt(segment.slice(8, 16), 16) * 256 + parseInt(segment.slice(16), 16);
const segmentName = (timeline: number, n: number) =>
  `${hex8(timeline)}${hex8(Math.floor(n / 256))}${hex8(n % 256)}`;

/** Every segment name from `first` to `last` on `first`'s timeline. */
function segmentRange(first: string, last: string): string[] {
  const names: string[] = [];
  for (let n = segmentNumber(first); n <= segmentNumber(last) && names.length < 10_000; n += 1) {
    names.push(segmentName(timelineOf(first), n));
  }
  return names;
}

/** pgBackRest's log of the backups taken on `node`. */
function backupLog(node: string): Promise<string> {
  return rig.execOk(node, ['cat', `/var/log/pgbackrest/${STANZA}-backup.log`]);
}

/** A planned switchover from `current` to its synchronous standby; returns the new leader. */
async function switchoverFrom(current: string): Promise<string> {
  // In synchronous mode Patroni switches over only to the synchronous standby.
  const members = await waitForHealthyReplication(rig);
  const candidate = (members.find((m) => m.role === 'sync_standby') ??
    members.find((m) => m.role !== 'leader'))!.name;
  await rig.execOk(
    candidate,
    asPostgres(
      'patronictl',
      '-c',
      '/etc/patroni/patroni.yml',
      'switchover',
      '--leader',
      current,
      '--candidate',
      candidate,
      '--force',
    ),
    undefined,
    120_000,
  );
  await eventually(`the switchover to ${candidate}`, 120_000, async () => {
    expect(await leader()).toBe(candidate);
  });
  await waitForHealthyReplication(rig);
  return candidate;
}

/**
 * Where the archive could not carry a recovery from its oldest segment to
 * `newest`: each timeline must hold every segment from where it began (the
 * segment of its branch point, which its history file in the repository
 * names) to the one before its child began, and the newest one up to `newest`.
 */
async function archiveGaps(node: string, newest: string): Promise<string[]> {
  const archived = await archivedSegments(node);
  const id = (await repositoryInfo(node)).archive.at(-1)!.id;
  /** The segment in which `child` branched from `child - 1`. */
  const branchOf = async (child: number): Promise<number | undefined> => {
    const history = await rig.execOk(
      node,
      asPostgres(
        'pgbackrest',
        `--stanza=${STANZA}`,
        'repo-get',
        `archive/${STANZA}/${id}/${hex8(child)}.history`,
      ),
      undefined,
      60_000,
    );
    // "<parent timeline>\t<switch LSN>\t<reason>" lines, one per ancestor.
    const lsn = new RegExp(`^${child - 1}\\s+([0-9A-F]+)/([0-9A-F]+)`, 'm').exec(history);
    return lsn
      ? parseInt(lsn[1], 16) * 256 + Math.floor(parseInt(lsn[2], 16) / 0x1000000)
      : undefined;
  };
  const oldest = [...archived].sort()[0];
  const gaps: string[] = [];
  let begin = segmentNumber(oldest);
  for (let timeline = timelineOf(oldest); timeline <= timelineOf(newest); timeline += 1) {
    const next = timeline < timelineOf(newest) ? await branchOf(timeline + 1) : undefined;
    if (timeline < timelineOf(newest) && next === undefined) {
      return [...gaps, `timeline ${timeline + 1}: its history does not name timeline ${timeline}`];
    }
    const end = next === undefined ? segmentNumber(newest) : next - 1;
    const missing = segmentRange(segmentName(timeline, begin), segmentName(timeline, end)).filter(
      (segment) => !archived.has(segment),
    );
    if (missing.length) gaps.push(`timeline ${timeline}: missing ${missing.join(', ')}`);
    begin = next ?? begin;
  }
  return gaps;
}

export function backupTests(clusterRig: () => RigCluster): void {
  describe('backup repository (real pgBackRest and S3 stand-in)', () => {
    beforeAll(async () => {
      rig = clusterRig();
      await waitForHealthyReplication(rig);
    }, 300_000);

    test('Given a new cluster, then the bootstrap made the stanza, every backend reads it with its instance role, and a switched segment reaches the repository', async () => {
      // Given the bootstrap has run (beforeAll)
      const primary = await leader();
      // Then every backend reads the stanza: it exists, with no backup yet
      for (const node of BACKENDS) {
        const info = await repositoryInfo(node);
        expect({ node, status: info.status.message }).toEqual({ node, status: 'no valid backups' });
      }
      // (Attempts before the stanza existed failed and were retried: WAL waits in pg_wal.)
      const failedBefore = await nodeQuery(primary, 'SELECT failed_count FROM pg_stat_archiver');
      // When the primary switches to a new WAL segment
      await nodeQuery(
        primary,
        'CREATE TABLE IF NOT EXISTS sentinel (id int PRIMARY KEY, note text)',
      );
      const segment = await archiveCurrentSegment(primary);
      // Then it was archived on the first attempt, and PostgreSQL counts it as archived
      const archiver = await nodeQuery(
        primary,
        'SELECT failed_count, last_archived_wal >= $$' + segment + '$$ FROM pg_stat_archiver',
      );
      expect(archiver).toBe(`${failedBefore}|t`);
    }, 600_000);

    test('Given a full backup taken on a replica, when a replica loses its data directory, then Patroni rebuilds it from the repository and it streams what came after', async () => {
      const primary = await leader();
      const replica = BACKENDS.find((node) => node !== primary)!;
      // Given a full backup taken by the backup runbook, as its weekly schedule starts it
      const { output } = await rig.backup('full');
      expect((await repositoryInfo(primary)).backup.map((b) => b.type)).toEqual(['full']);
      // (taken on a replica: its files read there, the backup started and stopped on the
      // primary through the primary's pgBackRest TLS server)
      const source = output as { from: string; node: { name: string }[] };
      expect(source.from).toBe('replica');
      expect(source.node[0].name).not.toBe(primary);
      expect(await backupLog(source.node[0].name)).toMatch(/replay on the standby/);
      // And a row written after it
      await nodeQuery(primary, "INSERT INTO sentinel VALUES (1, 'after the backup')");
      // When the replica's data directory is gone
      const log = await wipeAndRebuild(rig, replica);
      // Then Patroni made it with the pgbackrest method, and it has the later row
      expect(log).toContain('replica has been created using pgbackrest');
      await eventually('the later row on the rebuilt replica', 60_000, async () => {
        expect(await nodeQuery(replica, 'SELECT note FROM sentinel WHERE id = 1')).toBe(
          'after the backup',
        );
      });
    }, 600_000);

    test('Given the repository unreachable, when a replica loses its data directory, then Patroni falls back to a basebackup from the primary', async () => {
      const primary = await leader();
      const replica = BACKENDS.find((node) => node !== primary)!;
      // Given S3 cut off
      await rig.host.setLink(STORAGE_NODE, false);
      try {
        // When a replica is rebuilt
        const log = await wipeAndRebuild(rig, replica);
        // Then the repository method failed and the basebackup made it
        expect(log).toContain('Error creating replica using method pgbackrest');
        expect(log).toContain('replica has been created using basebackup');
      } finally {
        await rig.host.setLink(STORAGE_NODE, true);
      }
    }, 600_000);

    test('Given a backup type the runbook does not know, then it fails with InvalidInputError naming the type, and no backup is taken', async () => {
      const primary = await leader();
      const before = (await repositoryInfo(primary)).backup.length;
      // When the runbook is started with {"type": "incr"}
      const error = await rig.backup('incr').then(
        () => undefined,
        (failure: Error & { cause?: Error }) => failure,
      );
      // Then it names the field, what is allowed and what was given
      expect(error?.cause?.name ?? error?.name).toBe('InvalidInputError');
      expect(error?.cause?.message ?? error?.message).toContain(
        'type must be full or diff; got "incr"',
      );
      expect((await repositoryInfo(primary)).backup.length).toBe(before);
    }, 120_000);

    test('Given S3 unreachable for 45 s while a writer runs, then the WAL queue grows, the archive age crosses its alarm, and once S3 is back every segment reaches the repository', async () => {
      const primary = await leader();
      const threshold = alarmThreshold(rig, 'ArchiveAgeSeconds');
      expect(threshold).toBe(ARCHIVE_AGE_ALARM_SECONDS);
      // Given a healthy archive, as the health runbook reports it
      await archiveCurrentSegment(primary);
      const healthy = await rig.backupHealth();
      expect(healthy).toMatchObject({
        node: primary,
        archiveFailing: false,
        lastBackupType: 'full',
      });
      expect(healthy.hoursSinceLastBackup).toBeLessThan(1);
      const first = await nodeQuery(primary, 'SELECT pg_walfile_name(pg_current_wal_lsn())');
      // When S3 is cut off for 45 s (past the alarm's 30) while a writer completes a segment every 5 s
      let during: Awaited<ReturnType<RigCluster['backupHealth']>>;
      await rig.host.setLink(STORAGE_NODE, false);
      try {
        const until = Date.now() + 45_000;
        for (let i = 0; i < 20 && Date.now() < until; i += 1) {
          await nodeQuery(primary, 'INSERT INTO wal_probe VALUES (now())');
          await nodeQuery(primary, 'SELECT pg_switch_wal()');
          await sleep(5_000);
        }
        during = await rig.backupHealth();
      } finally {
        await rig.host.setLink(STORAGE_NODE, true);
      }
      // Then WAL waits on the primary, older than the alarm allows
      console.log(`S3 cut off: ${JSON.stringify(during)}`);
      expect(during.archiveQueueBytes).toBeGreaterThan(0);
      expect(during.archiveAgeSeconds).toBeGreaterThanOrEqual(threshold);
      // And once S3 is back and writes go on (one more segment wakes PostgreSQL's
      // archiver, which otherwise sleeps a minute after failing), the archive
      // catches up, with no segment missing
      await nodeQuery(primary, 'INSERT INTO wal_probe VALUES (now())');
      const last = await nodeQuery(primary, 'SELECT pg_walfile_name(pg_switch_wal())');
      await eventually('the archive caught up', 240_000, async () => {
        const health = await rig.backupHealth();
        expect([health.archiveAgeSeconds, health.archiveQueueBytes]).toEqual([0, 0]);
      });
      const archived = await archivedSegments(primary);
      const missing = segmentRange(first, last).filter((segment) => !archived.has(segment));
      expect({ first, last, missing }).toEqual({ first, last, missing: [] });
    }, 600_000);

    test.each([
      ['a time in the future', { time: '2099-01-01T00:00:00Z' }, 'time must not be in the future'],
      ['a time before the oldest backup', { time: 'HOUR_AGO' }, 'when the oldest backup'],
      ['a misspelled key', { tme: '2026-12-01T00:00:00Z' }, 'unknown field "tme"'],
      ['no confirm', { time: '2026-12-01T00:00:00Z', confirm: undefined }, 'confirm must be'],
    ])(
      'Given a restore with %s, then it fails with InvalidInputError naming the field, and no node is touched',
      async (_, fields, message) => {
        const before = await waitForHealthyReplication(rig);
        const input: Record<string, unknown> = { confirm: STANZA, ...fields };
        if (input.time === 'HOUR_AGO') input.time = new Date(Date.now() - 3600_000).toISOString();
        // When the restore runbook is started with it
        const error = await rig.restore(input).then(
          () => undefined,
          (failure: Error & { cause?: Error }) => failure.cause ?? failure,
        );
        // Then it is refused, saying why and that the cluster is untouched
        expect(error?.name).toBe('InvalidInputError');
        expect(error?.message).toContain(message);
        expect(error?.message).toContain('The cluster is left: untouched.');
        // And every member runs as before, on the same timeline
        const after = await waitForHealthyReplication(rig);
        const view = (members: typeof before) =>
          members.map((m) => [m.name, m.role, m.timeline]).sort();
        expect(view(after)).toEqual(view(before));
      },
      120_000,
    );

    test('Given a writer through the write endpoint, when the primary switches over three times in a row, then no acknowledged write is lost, the bootstrap passes its stanza step on the new primary, pgbackrest check passes, and every timeline in the archive is whole up to where the next one branched', async () => {
      const first = (await waitForHealthyReplication(rig)).find((m) => m.role === 'leader')!;
      await nodeQuery(first.name, 'CREATE TABLE continuity (id int PRIMARY KEY)');
      // Given a writer through the write endpoint
      const writer = startEndpointWriter(rig, 'continuity');
      let primary = first.name;
      try {
        // When the primary switches over three times in a row
        for (let i = 0; i < 3; i += 1) {
          primary = await switchoverFrom(primary);
          await sleep(3_000);
        }
      } finally {
        await writer.stop();
      }
      // Then every acknowledged write is there (synchronous mode)
      expect(writer.acknowledged.length).toBeGreaterThan(10);
      expect(await lostWrites(rig, 'continuity', writer.acknowledged)).toEqual([]);
      // And the bootstrap, run again as a deploy would, passes its stanza step there
      await rig.bootstrap();
      // And WAL of the newest timeline reaches the repository, and pgBackRest's own check passes
      const segment = await archiveCurrentSegment(primary);
      const timeline = parseInt(segment.slice(0, 8), 16);
      expect(timeline).toBeGreaterThanOrEqual((first.timeline ?? 1) + 3);
      await rig.execOk(
        primary,
        asPostgres('pgbackrest', `--stanza=${STANZA}`, 'check'),
        undefined,
        180_000,
      );
      // And no timeline has a gap: each is whole from its first segment to the
      // one before its child branched (the newest one to the last segment switched)
      const gaps = await archiveGaps(primary, segment);
      expect(gaps).toEqual([]);
    }, 900_000);

    test('Given the switchovers above, row A, a noted time, row B and a dropped table, when the cluster is restored to the noted time (from the full backup before the switchovers, through every timeline since), then A is back, B is not, one leader with streaming replicas takes writes through the write endpoint', async () => {
      const primary = await leader();
      const timelineBefore = (await waitForHealthyReplication(rig)).find(
        (m) => m.role === 'leader',
      )!.timeline;
      // Given row A, the time noted after it committed, and 2 s later row B and a DROP TABLE
      await nodeQuery(primary, 'CREATE TABLE pitr_sentinel (id int PRIMARY KEY, note text)');
      await nodeQuery(primary, "INSERT INTO pitr_sentinel VALUES (1, 'A')");
      const noted = await nodeQuery(
        primary,
        `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`,
      );
      await sleep(2_000);
      await nodeQuery(primary, "INSERT INTO pitr_sentinel VALUES (2, 'B')");
      await nodeQuery(primary, 'DROP TABLE pitr_sentinel');
      // (Their WAL reaches the repository: recovery must see a commit past the target.)
      await archiveCurrentSegment(primary);
      // When the restore runbook restores the cluster to the noted time
      const { durationMs } = await rig.restore({ confirm: STANZA, time: noted });
      console.log(`point-in-time restore to ${noted}: ${(durationMs / 1000).toFixed(1)} s`);
      // Then there is one leader, on a new timeline, and every replica streams
      const members = await waitForHealthyReplication(rig);
      const leaders = members.filter((m) => m.role === 'leader');
      expect(leaders).toHaveLength(1);
      expect(leaders[0].timeline).toBeGreaterThan(timelineBefore ?? 0);
      // And through the write endpoint A is there and B is not
      await eventually('the write endpoint on the restored leader', 60_000, async () => {
        const rows = await endpointQueryOn(rig, 5432, 'SELECT note FROM pitr_sentinel ORDER BY id');
        expect(rows.map((r: { note: string }) => r.note)).toEqual(['A']);
      });
      // And it takes writes, which reach the replicas
      await endpointQueryOn(rig, 5432, "INSERT INTO pitr_sentinel VALUES (3, 'after the restore')");
      for (const m of members.filter((member) => member.role !== 'leader')) {
        await eventually(`the new row on ${m.name}`, 60_000, async () => {
          expect(await nodeQuery(m.name, 'SELECT count(*) FROM pitr_sentinel')).toBe('2');
        });
      }
      // And the new timeline has a full backup of its own, and the daily differential
      // backup goes on top of it, taken on a replica
      expect((await repositoryInfo(leaders[0].name)).backup.at(-1)?.type).toBe('full');
      const { output } = await rig.backup('diff');
      expect(output).toMatchObject({ from: 'replica' });
      expect((await repositoryInfo(leaders[0].name)).backup.at(-1)?.type).toBe('diff');
    }, 900_000);

    // Last: it moves the primary and leaves the old one's space reserve released.
    alarmTests(() => rig);

    fullDiskTests(() => rig);
  });
}
