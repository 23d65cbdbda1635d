import type { SSMClient } from '@aws-sdk/client-ssm';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { ErrorName, messageError } from '../lib/errors';
import { BACKUP_METRICS } from '../lib/metric-names';
import { type CommandRef, successfulOutput } from '../lib/ssm-run';

/** PostgreSQL on the primary did not answer: no archive reading (the volume's was published). */
export class ArchiveStatusUnreadableError extends messageError(ErrorName.ArchiveStatusUnreadable) {}

/** The primary's data volume: what PostgreSQL may still use (0 when it is not mounted). */
export interface DataVolume {
  readonly freePercent: number;
  readonly freeMib: number;
}

/** What the backup document's status action reported on the primary. */
export interface BackupHealth {
  readonly node: string;
  readonly archiveAgeSeconds: number;
  readonly archiveQueueBytes: number;
  readonly archiveFailing: boolean;
  readonly archiveFailedCount: number;
  /** Absent when the repository holds no backup or could not be read. */
  readonly hoursSinceLastBackup?: number;
  readonly lastBackupType?: string;
  readonly dataVolume?: DataVolume;
}

const statusLines = (stdout: string) => {
  const found = new Map<string, string>();
  for (const [, key, value] of stdout.matchAll(/^backup-status=([a-z-]+)=(.*)$/gm)) {
    found.set(key, value);
  }
  return found;
};

/** The data volume lines; absent from a node that runs an older document. */
export function parseDataVolume(stdout: string): DataVolume | undefined {
  const found = statusLines(stdout);
  const [percent, mib] = ['data-volume-free-percent', 'data-volume-free-mib'].map((key) =>
    found.get(key),
  );
  if (!percent || !mib || !/^\d+$/.test(percent) || !/^\d+$/.test(mib)) return undefined;
  return { freePercent: Number(percent), freeMib: Number(mib) };
}

const ARCHIVE_KEYS = [
  'archive-age-seconds',
  'archive-queue-bytes',
  'archive-failing',
  'archive-failed-count',
] as const;

/** The `backup-status=<key>=<value>` lines; a missing or non-numeric archive reading is an error. */
export function parseBackupStatus(node: string, stdout: string): BackupHealth {
  const found = statusLines(stdout);
  const dataVolume = parseDataVolume(stdout);
  if (found.get('archive-unreadable') === '1') {
    throw new ArchiveStatusUnreadableError(
      `PostgreSQL on ${node} did not answer: no archive reading${dataVolume ? ` (its data volume: ${dataVolume.freePercent} % free, ${dataVolume.freeMib} MiB, published)` : ''}`,
    );
  }
  const whole = (key: string): number => {
    const value = found.get(key);
    if (value === undefined || !/^\d+$/.test(value)) {
      throw new Error(
        `${node}: the backup status reported ${key}=${value ?? '(nothing)'}; expected a whole number`,
      );
    }
    return Number(value);
  };
  const [ageSeconds, queueBytes, failing, failedCount] = ARCHIVE_KEYS.map(whole);
  const backupAge = found.has('last-backup-age-seconds')
    ? whole('last-backup-age-seconds')
    : undefined;
  return {
    node,
    archiveAgeSeconds: ageSeconds,
    archiveQueueBytes: queueBytes,
    archiveFailing: failing === 1,
    archiveFailedCount: failedCount,
    ...(backupAge !== undefined && {
      hoursSinceLastBackup: Math.round((backupAge / 3600) * 100) / 100,
      lastBackupType: found.get('last-backup-type'),
    }),
    ...(dataVolume && { dataVolume }),
  };
}

/** The output of the primary's status command (which succeeds when PostgreSQL does not answer). */
export const readStatusOutput = (ssm: SSMClient, command: CommandRef): Promise<string> =>
  successfulOutput(ssm, command, 'backup status');

/** The data volume's free share, published before the archive is read: it needs no PostgreSQL. */
export function publishDataVolume(metrics: Metrics, clusterName: string, volume: DataVolume): void {
  metrics
    .singleMetric()
    .addDimensions({ ClusterName: clusterName })
    .addMetric(BACKUP_METRICS.dataVolumeFreePercent, MetricUnit.Percent, volume.freePercent);
}

/**
 * One datapoint per metric for the cluster. HoursSinceLastBackup is left out
 * when there is no backup: its alarm counts the missing datapoint as breaching.
 */
export function publishBackupHealth(
  metrics: Metrics,
  clusterName: string,
  health: BackupHealth,
): void {
  const metric = () => metrics.singleMetric().addDimensions({ ClusterName: clusterName });
  metric().addMetric(
    BACKUP_METRICS.archiveAgeSeconds,
    MetricUnit.Seconds,
    health.archiveAgeSeconds,
  );
  metric().addMetric(BACKUP_METRICS.archiveQueueBytes, MetricUnit.Bytes, health.archiveQueueBytes);
  metric().addMetric(
    BACKUP_METRICS.archiveFailing,
    MetricUnit.Count,
    health.archiveFailing ? 1 : 0,
  );
  if (health.hoursSinceLastBackup !== undefined) {
    metric().addMetric(
      BACKUP_METRICS.hoursSinceLastBackup,
      MetricUnit.Count,
      health.hoursSinceLastBackup,
    );
  }
}
