/** Names the functions publish under and the alarms watch (shared by both sides). */
export const CERTIFICATE_METRICS = {
  namespace: 'PemHa/Certificates',
  /** Powertools adds it as the `service` dimension of every metric. */
  service: 'pem-ha',
  daysToExpiry: 'DaysToExpiry',
} as const;

/** The backup health runbook's metrics (dimensions: service, ClusterName). */
export const BACKUP_METRICS = {
  namespace: 'PemHa/Backups',
  service: 'pem-ha',
  /** Age of the oldest completed WAL segment not yet in the repository. */
  archiveAgeSeconds: 'ArchiveAgeSeconds',
  /** WAL waiting for archive_command (archive-push-queue-max bounds it). */
  archiveQueueBytes: 'ArchiveQueueBytes',
  /** 1 while the archiver's last attempt failed. */
  archiveFailing: 'ArchiveFailing',
  hoursSinceLastBackup: 'HoursSinceLastBackup',
  /** Share of the primary's data volume PostgreSQL may still fill (0 when not mounted). */
  dataVolumeFreePercent: 'DataVolumeFreePercent',
} as const;
