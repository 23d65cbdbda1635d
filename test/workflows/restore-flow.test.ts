import {
  definitionOf,
  documentOf,
  execute,
  failureOf,
  fakeCluster,
  Sent,
} from '../helpers/fake-runbook';

const RESTORE = definitionOf('RestoreStateMachineArn');
const TARGET = { confirm: 'pem-ha', time: '2026-12-02T10:00:00Z' };

/** Document, node, and the parameters a reader of the sequence needs. */
const step = (s: Sent) => {
  const { Action, KeepData, Bootstrap, RestoreTarget, RestoreSet } = s.parameters;
  const shown = Object.entries({ Action, KeepData, Bootstrap, RestoreTarget, RestoreSet })
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return `${documentOf(s)} ${s.node} ${shown}`;
};

describe('point-in-time restore runbook (synthesized definition, run with aws-local-stepfunctions)', () => {
  test('Given a time after the oldest backup, then every backend stops, etcd is cleared, the first backend restores to it, is backed up, and the others are cloned', async () => {
    const cluster = fakeCluster({ leader: 'backend-2' });

    await execute(RESTORE, cluster, TARGET);

    expect(cluster.sent.map(step)).toEqual([
      'Restore backend-1 Action=info KeepData=false',
      'Restore backend-1 Action=stop KeepData=false',
      'Restore backend-2 Action=stop KeepData=false',
      'Restore backend-3 Action=stop KeepData=false',
      'Restore backend-1 Action=clear-dcs KeepData=false',
      'Restore backend-1 Action=set-aside KeepData=true',
      'Restore backend-2 Action=set-aside KeepData=false',
      'Restore backend-3 Action=set-aside KeepData=false',
      'Patroni backend-1 Bootstrap=true RestoreTarget=time=2026-12-02 10:00:00.000+00 RestoreSet=latest',
      'Backup backend-1 Action=full',
      'Patroni backend-2 Bootstrap=false',
      'Patroni backend-3 Bootstrap=false',
      'Patroni backend-1 Bootstrap=true',
    ]);
  });

  test('Given an LSN, then the restore starts from the newest backup that ended before it', async () => {
    const cluster = fakeCluster();
    await execute(RESTORE, cluster, { confirm: 'pem-ha', lsn: '0/3000060' });
    const restore = cluster.sent.find((s) => s.parameters.RestoreTarget);
    expect(restore?.parameters).toMatchObject({
      RestoreTarget: 'lsn=0/3000060',
      RestoreSet: '20261130-230000F',
    });
  });

  test.each([
    [{ ...TARGET, confirm: 'pem' }, 'confirm must be the cluster\'s name, "pem-ha"'],
    [{ time: TARGET.time }, "confirm must be the cluster's name"],
    [{ ...TARGET, tme: 'x' }, 'unknown field "tme"'],
    [{ confirm: 'pem-ha' }, 'name exactly one target of time, lsn, restorePoint, latest; got none'],
    [{ confirm: 'pem-ha', time: '2099-01-01T00:00:00Z' }, 'time must not be in the future'],
    [
      { confirm: 'pem-ha', time: '2026-11-01T00:00:00Z' },
      'time must be at or after 2026-12-01T00:00:00.000Z',
    ],
    [
      { confirm: 'pem-ha', time: '2026-12-02 10:00' },
      'time must be an ISO 8601 time with its offset',
    ],
  ])(
    'Given the input %p, then it fails with InvalidInputError saying why, and no node is touched beyond reading the repository',
    async (input, message) => {
      const cluster = fakeCluster();
      const error = await failureOf(execute(RESTORE, cluster, input));
      expect(error.name).toBe('InvalidInputError');
      expect(error.message).toContain(message);
      expect(error.message).toContain('The cluster is left: untouched.');
      expect(cluster.sent.map(step).filter((s) => !s.includes('Action=info'))).toEqual([]);
    },
  );

  test('Given no backup in the repository, then it refuses with PreflightFailedError before stopping anything', async () => {
    const cluster = fakeCluster({ backups: [] });
    const error = await failureOf(execute(RESTORE, cluster, TARGET));
    expect(error.name).toBe('PreflightFailedError');
    expect(cluster.sent.map(step)).toEqual(['Restore backend-1 Action=info KeepData=false']);
  });

  test('Given the restore fails on the first backend, then the error names it and says what the cluster was left as and what to run', async () => {
    const cluster = fakeCluster({
      failOn: { document: 'Patroni', node: 'backend-1' },
    });
    const error = await failureOf(execute(RESTORE, cluster, TARGET));
    expect(error.name).toBe('CommandFailedError');
    expect(error.message).toContain('backend-1');
    expect(error.message).toContain('its data from before is in <data>.before-restore-<time>');
    expect(error.message).toContain('Run the restore again');
  });
});
