import type { SSMClient } from '@aws-sdk/client-ssm';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { BACKUP_METRICS } from '../lib/metric-names';
import { type CommandRef, successfulOutput } from '../lib/ssm-run';

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
}

const ARCHIVE_KEYS = [
  'archive-age-seconds',
  'archive-queue-bytes',
  'archive-failing',
  'archive-failed-count',
] as const;

/** The `backup-status=<key>=<value>` lines; a missing or non-numeric archive reading is an error. */
export function parseBackupStatus(node: string, stdout: string): BackupHealth {
  const found = new Map<string, string>();
  for (const [, key, value] of stdout.matchAll(/^backup-status=([a-z-]+)=(.*)$/gm)) {
    found.set(key, value);
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
  };
}

/** The primary's backup health from its last status command. */
export async function readBackupHealth(ssm: SSMClient, command: CommandRef): Promise<BackupHealth> {
  const stdout = await successfulOutput(ssm, command, 'backup status');
  return parseBackupStatus(command.nodeName, stdout);
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
