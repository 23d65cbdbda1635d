import { GetCommandInvocationCommand, SSMClient } from '@aws-sdk/client-ssm';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { mockClient } from 'aws-sdk-client-mock';
import {
  parseBackupStatus,
  parseDataVolume,
  publishBackupHealth,
  publishDataVolume,
  readStatusOutput,
} from '../../functions/record-backup-health/health';

const ssm = mockClient(SSMClient);
const client = new SSMClient({ region: 'eu-west-1' });
const COMMAND = { commandId: 'cmd-1', instanceId: 'i-0123456789abcdef0', nodeName: 'backend-1' };
const ARCHIVE_LINES = [
  'backup-status=archive-age-seconds=75',
  'backup-status=archive-queue-bytes=50331648',
  'backup-status=archive-failing=1',
  'backup-status=archive-failed-count=4',
];

beforeEach(() => ssm.reset());

describe('backup status', () => {
  test('Given the lines of the status action, then each reading is parsed, the backup age in hours', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({
      Status: 'Success',
      StandardOutputContent: [
        '[pem-ha 10:00:00] reading the archive',
        ...ARCHIVE_LINES,
        'backup-status=last-backup-age-seconds=5400',
        'backup-status=last-backup-type=diff',
      ].join('\n'),
    });

    expect(parseBackupStatus('backend-1', await readStatusOutput(client, COMMAND))).toEqual({
      node: 'backend-1',
      archiveAgeSeconds: 75,
      archiveQueueBytes: 50331648,
      archiveFailing: true,
      archiveFailedCount: 4,
      hoursSinceLastBackup: 1.5,
      lastBackupType: 'diff',
    });
  });

  test('Given a repository with no backup, then there is no backup age (its alarm breaches on the missing datapoint)', () => {
    const health = parseBackupStatus('backend-1', ARCHIVE_LINES.join('\n'));
    expect(health.hoursSinceLastBackup).toBeUndefined();
    expect(health.archiveFailing).toBe(true);
  });

  test.each([
    ['an archive reading missing', ARCHIVE_LINES.slice(1), 'archive-age-seconds=(nothing)'],
    [
      'a reading that is not a number',
      ['backup-status=archive-age-seconds=soon', ...ARCHIVE_LINES.slice(1)],
      'archive-age-seconds=soon; expected a whole number',
    ],
  ])('Given %s, then it fails naming the node and the key', (_, lines, message) => {
    expect(() => parseBackupStatus('backend-1', lines.join('\n'))).toThrow(
      `backend-1: the backup status reported ${message}`,
    );
  });

  test('Given a status command that did not succeed, then nothing is parsed', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Failed' });
    await expect(readStatusOutput(client, COMMAND)).rejects.toThrow(
      'backend-1: the backup status command is Failed, not Success',
    );
  });
});

describe('the data volume', () => {
  const VOLUME_LINES = [
    'backup-status=data-volume-free-percent=0',
    'backup-status=data-volume-free-mib=16',
  ];

  test('Given the volume lines, then they are read with the archive ones', () => {
    expect(
      parseBackupStatus('backend-1', [...ARCHIVE_LINES, ...VOLUME_LINES].join('\n')).dataVolume,
    ).toEqual({
      freePercent: 0,
      freeMib: 16,
    });
    expect(parseDataVolume(ARCHIVE_LINES.join('\n'))).toBeUndefined();
  });

  test('Given PostgreSQL did not answer on the primary (its volume full), then the archive reading fails with ArchiveStatusUnreadableError that quotes the volume reading', () => {
    const lines = ['backup-status=archive-unreadable=1', ...VOLUME_LINES].join('\n');
    expect(() => parseBackupStatus('backend-1', lines)).toThrow(
      expect.objectContaining({
        name: 'ArchiveStatusUnreadableError',
        message:
          'PostgreSQL on backend-1 did not answer: no archive reading (its data volume: 0 % free, 16 MiB, published)',
      }),
    );
  });
});

describe('publishing', () => {
  const emitted = (publish: (metrics: Metrics) => void) => {
    const lines: string[] = [];
    // Powertools prints EMF on stdout through its own Console.
    const write = process.stdout.write;
    process.stdout.write = ((chunk: unknown) => {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      return true;
    }) as typeof process.stdout.write;
    try {
      publish(new Metrics({ namespace: 'PemHa/Backups', serviceName: 'pem-ha' }));
    } finally {
      process.stdout.write = write;
    }
    return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  };

  test('Given a reading with a backup, then four metrics go out with the cluster dimension', () => {
    const health = parseBackupStatus(
      'backend-1',
      [...ARCHIVE_LINES, 'backup-status=last-backup-age-seconds=7200'].join('\n'),
    );
    const metrics = emitted((m) => publishBackupHealth(m, 'pem', health));
    expect(
      metrics.map((m) => {
        const name = Object.keys(m).find((k) => !['_aws', 'ClusterName', 'service'].includes(k))!;
        return [name, m[name], m.ClusterName];
      }),
    ).toEqual([
      ['ArchiveAgeSeconds', 75, 'pem'],
      ['ArchiveQueueBytes', 50331648, 'pem'],
      ['ArchiveFailing', 1, 'pem'],
      ['HoursSinceLastBackup', 2, 'pem'],
    ]);
  });

  test('Given a volume reading, then DataVolumeFreePercent goes out with the cluster dimension', () => {
    const [metric] = emitted((m) => publishDataVolume(m, 'pem', { freePercent: 7, freeMib: 700 }));
    expect([metric.DataVolumeFreePercent, metric.ClusterName]).toEqual([7, 'pem']);
  });

  test('Given no backup, then HoursSinceLastBackup is not published at all', () => {
    const health = parseBackupStatus('backend-1', ARCHIVE_LINES.join('\n'));
    const names = emitted((m) => publishBackupHealth(m, 'pem', health)).flatMap(Object.keys);
    expect(names).not.toContain('HoursSinceLastBackup');
  });
});
