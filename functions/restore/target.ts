import type { SSMClient } from '@aws-sdk/client-ssm';
import { ErrorName, messageError } from '../lib/errors';
import { type CommandRef, successfulOutput } from '../lib/ssm-run';
import { InvalidInputError, type RestoreRequest } from './request';

/** The repository cannot serve the restore (no backup); nothing was touched. */
export class PreflightFailedError extends messageError(ErrorName.PreflightFailed) {}

/** One backup as the restore document's info action lists it (times in epoch seconds). */
export interface RepositoryBackup {
  readonly label: string;
  readonly type: string;
  readonly start: number;
  readonly stop: number;
  readonly lsnStart: string;
  readonly lsnStop: string;
}

/** What the patroni document's restore parameters become. */
export interface RestorePlan {
  readonly restoreTarget: string;
  /** The backup to start from, or `latest` (pgBackRest picks it for a time target). */
  readonly restoreSet: string;
  readonly backups: number;
}

/** The `repository-backups=<json>` line of the info action. */
export async function readRepositoryBackups(
  ssm: SSMClient,
  command: CommandRef,
): Promise<RepositoryBackup[]> {
  const stdout = await successfulOutput(ssm, command, 'repository info');
  const line = /^repository-backups=(.*)$/m.exec(stdout);
  if (!line) throw new Error(`${command.nodeName}: the repository info listed no backups line`);
  return JSON.parse(line[1]) as RepositoryBackup[];
}

const lsnValue = (lsn: string) => {
  const [high, low] = lsn.split('/');
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
};
const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

/**
 * Checks the target against the backups: a time or LSN must come after the
 * oldest backup ended (nothing before it can be replayed to).
 */
export function planRestore(
  request: RestoreRequest,
  backups: readonly RepositoryBackup[],
): RestorePlan {
  if (backups.length === 0) {
    throw new PreflightFailedError(
      'the repository holds no backup to restore from: take one with the backup runbook ({"type": "full"}) first',
    );
  }
  const oldest = backups.reduce((a, b) => (a.stop <= b.stop ? a : b));
  const plan = (restoreSet = 'latest') => ({
    restoreTarget: request.target,
    restoreSet,
    backups: backups.length,
  });
  if (request.targetTime !== undefined) {
    if (request.targetTime < oldest.stop * 1000) {
      throw new InvalidInputError(
        `time must be at or after ${iso(oldest.stop)}, when the oldest backup (${oldest.label}) ended; got ${new Date(request.targetTime).toISOString()}`,
      );
    }
    return plan();
  }
  if (request.target.startsWith('lsn=')) {
    const target = lsnValue(request.target.slice('lsn='.length));
    const usable = backups.filter((b) => lsnValue(b.lsnStop) <= target);
    if (usable.length === 0) {
      throw new InvalidInputError(
        `lsn must be at or after ${oldest.lsnStop}, where the oldest backup (${oldest.label}) ended; got ${request.target.slice(4)}`,
      );
    }
    return plan(usable.reduce((a, b) => (a.stop >= b.stop ? a : b)).label);
  }
  return plan();
}
