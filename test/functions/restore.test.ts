import { parseRestoreRequest } from '../../functions/restore/request';
import { planRestore, RepositoryBackup } from '../../functions/restore/target';

const NOW = new Date('2026-12-03T12:00:00Z');
const backup = (label: string, stopIso: string, lsnStop: string): RepositoryBackup => ({
  label,
  type: label.endsWith('F') ? 'full' : 'diff',
  start: Date.parse(stopIso) / 1000 - 600,
  stop: Date.parse(stopIso) / 1000,
  lsnStart: '0/1000000',
  lsnStop,
});
const BACKUPS = [
  backup('20261201-000000F', '2026-12-01T00:10:00Z', '0/5000100'),
  backup('20261201-000000F_20261202-000000D', '2026-12-02T00:10:00Z', '1/A000100'),
];
const request = (input: Record<string, unknown>) =>
  parseRestoreRequest({ confirm: 'pem-ha', ...input }, 'pem-ha', NOW);

describe('restore request', () => {
  test.each([
    [{ time: '2026-12-03T10:15:30Z' }, 'time=2026-12-03 10:15:30.000+00'],
    [{ time: '2026-12-03T11:15:30.25+01:00' }, 'time=2026-12-03 10:15:30.250+00'],
    [{ lsn: '1/a000200' }, 'lsn=1/A000200'],
    [{ restorePoint: 'before-migration_7' }, 'name=before-migration_7'],
    [{ latest: true }, 'latest'],
  ])('Given %p, then the target is %s', (input, target) => {
    expect(request(input).target).toBe(target);
  });

  test.each([
    ['not an object', '"2026-12-03"', 'the input must be an object'],
    ['a misspelled key', { confirm: 'pem-ha', tmie: 'x' }, 'unknown field "tmie"; the fields are'],
    ['no confirm', { time: '2026-12-03T10:00:00Z' }, "confirm must be the cluster's name"],
    ['two targets', { confirm: 'pem-ha', latest: true, lsn: '0/1' }, 'got lsn and latest'],
    [
      'a time without offset',
      { confirm: 'pem-ha', time: '2026-12-03T10:00:00' },
      'with its offset',
    ],
    ['a time in the future', { confirm: 'pem-ha', time: '2026-12-03T12:00:01Z' }, 'in the future'],
    ['latest: false', { confirm: 'pem-ha', latest: false }, 'latest must be true'],
    ['a bad LSN', { confirm: 'pem-ha', lsn: '0/XYZ' }, 'lsn must be a PostgreSQL LSN'],
    [
      'a restore point with a quote',
      { confirm: 'pem-ha', restorePoint: "a'b" },
      'restorePoint must be',
    ],
  ])('Given %s, then InvalidInputError names the field and what was given', (_, input, message) => {
    const parse = () =>
      parseRestoreRequest(typeof input === 'string' ? JSON.parse(input) : input, 'pem-ha', NOW);
    expect(parse).toThrow(message);
    expect(parse).toThrow(expect.objectContaining({ name: 'InvalidInputError' }));
  });
});

describe('restore plan', () => {
  test('Given a time after the oldest backup ended, then pgBackRest picks the backup', () => {
    expect(planRestore(request({ time: '2026-12-01T08:00:00Z' }), BACKUPS)).toEqual({
      restoreTarget: 'time=2026-12-01 08:00:00.000+00',
      restoreSet: 'latest',
      backups: 2,
    });
  });

  test('Given a time before the oldest backup ended, then it is refused naming that end', () => {
    expect(() => planRestore(request({ time: '2026-12-01T00:05:00Z' }), BACKUPS)).toThrow(
      'time must be at or after 2026-12-01T00:10:00.000Z, when the oldest backup (20261201-000000F) ended; got 2026-12-01T00:05:00.000Z',
    );
  });

  test('Given an LSN between two backups, then the restore starts from the earlier one', () => {
    expect(planRestore(request({ lsn: '0/9000000' }), BACKUPS).restoreSet).toBe('20261201-000000F');
    expect(planRestore(request({ lsn: '2/0' }), BACKUPS).restoreSet).toBe(
      '20261201-000000F_20261202-000000D',
    );
  });

  test('Given an LSN before the oldest backup ended, then it is refused', () => {
    expect(() => planRestore(request({ lsn: '0/5000000' }), BACKUPS)).toThrow(
      'lsn must be at or after 0/5000100',
    );
  });

  test('Given an empty repository, then PreflightFailedError says to take a backup first', () => {
    expect(() => planRestore(request({ latest: true }), [])).toThrow(
      expect.objectContaining({ name: 'PreflightFailedError' }),
    );
  });
});
