/**
 * The backup repository on the rig: pgBackRest on every backend archiving to
 * Moto's S3 server over TLS with instance-role credentials from the IMDS
 * stand-in, the stanza made by the synthesized bootstrap, and replicas
 * rebuilt from the repository (or from the primary when it is unreachable).
 */
import { RigCluster } from '../../rig/cluster';
import { STORAGE_NODE } from '../../rig/object-storage/object-storage';
import { patroniMembers, waitForHealthyReplication } from '../../rig/patroni';
import { eventually, nodeQueryOn, upTestRig } from '../helpers/rig';

const asRoot = process.getuid?.() === 0;
const suite = asRoot ? describe : describe.skip;
if (!asRoot) console.warn('test/rig/backup.test.ts needs root (network namespaces): skipped');

let rig: RigCluster;
const STANZA = 'pem-ha';
const BACKENDS = ['backend-1', 'backend-2', 'backend-3'];
const nodeQuery = (node: string, text: string) => nodeQueryOn(rig, node, text);
/** A command as the node's postgres user, as Patroni and archive_command run. */
const asPostgres = (...argv: string[]) => ['runuser', '-u', 'postgres', '--', ...argv];

interface StanzaInfo {
  status: { code: number; message: string };
  backup: { type: string }[];
  archive: { database: { id: number }; min: string | null; max: string | null }[];
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

/** Empties a replica as a lost volume would, and lets Patroni rebuild it. */
async function wipeAndRebuild(node: string): Promise<string> {
  const log = '/var/log/rig-units/patroni.service.log';
  await rig.execOk(node, ['systemctl', 'stop', 'patroni'], undefined, 120_000);
  await rig.execOk(node, [
    'sh',
    '-c',
    `rm -rf /var/lib/postgresql/17/${STANZA} /var/lib/pem-ha/patroni-member && : >${log}`,
  ]);
  await rig.execOk(node, ['systemctl', 'start', 'patroni']);
  await waitForHealthyReplication(rig, 300_000);
  return rig.execOk(node, ['cat', log]);
}

suite('backup repository (rig, real pgBackRest and S3 stand-in)', () => {
  beforeAll(async () => {
    // No PEM: the web tier plays no part in backups, and the suite runs faster without it.
    rig = await upTestRig('bak', '10.46.0.0/16', { pem: false });
    await waitForHealthyReplication(rig);
  }, 900_000);

  afterAll(async () => {
    await rig?.down();
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
    await nodeQuery(primary, 'CREATE TABLE IF NOT EXISTS sentinel (id int PRIMARY KEY, note text)');
    const segment = await archiveCurrentSegment(primary);
    // Then it was archived on the first attempt, and PostgreSQL counts it as archived
    const archiver = await nodeQuery(
      primary,
      'SELECT failed_count, last_archived_wal >= $$' + segment + '$$ FROM pg_stat_archiver',
    );
    expect(archiver).toBe(`${failedBefore}|t`);
  }, 600_000);

  test('Given a full backup, when a replica loses its data directory, then Patroni rebuilds it from the repository and it streams what came after', async () => {
    const primary = await leader();
    const replica = BACKENDS.find((node) => node !== primary)!;
    // Given a full backup taken on the primary, and a row written after it
    await rig.execOk(
      primary,
      asPostgres('pgbackrest', `--stanza=${STANZA}`, '--type=full', 'backup'),
      undefined,
      300_000,
    );
    expect((await repositoryInfo(primary)).backup.map((b) => b.type)).toEqual(['full']);
    await nodeQuery(primary, "INSERT INTO sentinel VALUES (1, 'after the backup')");
    // When the replica's data directory is gone
    const log = await wipeAndRebuild(replica);
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
      const log = await wipeAndRebuild(replica);
      // Then the repository method failed and the basebackup made it
      expect(log).toContain('Error creating replica using method pgbackrest');
      expect(log).toContain('replica has been created using basebackup');
    } finally {
      await rig.host.setLink(STORAGE_NODE, true);
    }
  }, 600_000);

  test('Given a switchover, when the bootstrap runs again, then the new primary passes the stanza step and its timeline reaches the repository', async () => {
    const before = await leader();
    // In synchronous mode Patroni switches over only to the synchronous standby.
    const members = await waitForHealthyReplication(rig);
    const candidate = (members.find((m) => m.role === 'sync_standby') ??
      members.find((m) => m.role !== 'leader'))!.name;
    // Given a switchover to another member
    await rig.execOk(
      candidate,
      asPostgres(
        'patronictl',
        '-c',
        '/etc/patroni/patroni.yml',
        'switchover',
        '--leader',
        before,
        '--candidate',
        candidate,
        '--force',
      ),
      undefined,
      120_000,
    );
    await eventually('the switchover', 120_000, async () => {
      expect(await leader()).toBe(candidate);
    });
    await waitForHealthyReplication(rig);
    // When the bootstrap runs again (as a deploy or an operator would start it)
    await rig.bootstrap();
    // Then WAL of the new timeline reaches the repository from the new primary
    const segment = await archiveCurrentSegment(candidate);
    expect(segment.slice(0, 8)).not.toBe('00000001');
    expect((await repositoryInfo(candidate)).status.message).toBe('ok');
  }, 600_000);
});
