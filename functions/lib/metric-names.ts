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

/**
 * The cluster's health at 1-minute resolution. The cluster-metrics function
 * publishes Patroni's view (dimensions: service, ClusterName, and Member for
 * per-member figures); each etcd and backend node's collector publishes its
 * own readings (dimensions: ClusterName, and Node for its heartbeat).
 */
export const CLUSTER_METRICS = {
  namespace: 'PemHa/Cluster',
  service: 'pem-ha',
  // From Patroni's REST API (the cluster-metrics function).
  primaryCount: 'PrimaryCount',
  membersRunning: 'MembersRunning',
  timeline: 'Timeline',
  pendingRestartMembers: 'PendingRestartMembers',
  paused: 'Paused',
  /** One per run: the publisher's heartbeat. */
  publisherRuns: 'PublisherRuns',
  replicaLagBytes: 'ReplicaLagBytes',
  replayDelaySeconds: 'ReplayDelaySeconds',
  dcsLastSeenSeconds: 'DcsLastSeenSeconds',
  // From the nodes (infra/node/metrics.sh).
  nodeHeartbeat: 'NodeMetricsPublished',
  oldestTransactionSeconds: 'OldestTransactionSeconds',
  xidAge: 'XidAge',
  connectionsPercent: 'ConnectionsPercent',
  slotRetainedWalBytes: 'SlotRetainedWalBytes',
  dataVolumeFreePercent: 'DataVolumeFreePercent',
  etcdMembersHealthy: 'EtcdMembersHealthy',
  etcdLeaderPresent: 'EtcdLeaderPresent',
  etcdDbSizePercent: 'EtcdDbSizePercent',
} as const;
