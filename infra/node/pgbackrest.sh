# pgbackrest: the backup repository's client configuration. The patroni
# document writes it before Patroni starts, because archive_command and the
# replica methods call pgBackRest. Credentials come from the instance role
# (repo1-s3-key-type=auto): no key is written anywhere.

PGBACKREST_CONFIG=/etc/pgbackrest/pgbackrest.conf
# Patroni's first replica method (patroni.yml's create_replica_methods).
REPLICA_FROM_REPOSITORY=/usr/local/lib/pem-ha/replica-from-repository
PGBACKREST_SPOOL=/var/spool/pgbackrest
PGBACKREST_LOGS=/var/log/pgbackrest

# write_pgbackrest_config DATA_DIR: the configuration of stanza CLUSTER_NAME.
# Parameters: CLUSTER_NAME, REPOSITORY_BUCKET, REPOSITORY_REGION,
# REPOSITORY_ENDPOINT, REPOSITORY_KMS_KEY, REPOSITORY_PATH, RETENTION_DAYS,
# ARCHIVE_PUSH_QUEUE_MAX_GIB.
write_pgbackrest_config() {
  local data_dir=$1 cores process_max
  command -v pgbackrest >/dev/null || die "pgbackrest is not installed: the common document installs it on backends"
  # Backups and restores use every core up to eight; archiving stays at two so
  # that a backup never starves it.
  cores=$(nproc)
  process_max=$((cores > 8 ? 8 : cores))
  install -d -m 0750 -o postgres -g postgres "$PGBACKREST_SPOOL" "$PGBACKREST_LOGS"
  install -d -m 0755 -o root -g root /etc/pgbackrest
  install_file "$PGBACKREST_CONFIG" 0644 root:root <<CONF
# Written by pem-ha's patroni document; edits are replaced on the next run.
[global]
repo1-type=s3
repo1-s3-bucket=${REPOSITORY_BUCKET}
repo1-s3-region=${REPOSITORY_REGION}
repo1-s3-endpoint=${REPOSITORY_ENDPOINT}
repo1-s3-key-type=auto
repo1-s3-kms-key-id=${REPOSITORY_KMS_KEY}
repo1-path=${REPOSITORY_PATH}
# Point-in-time recovery for ${RETENTION_DAYS} days: a full backup is expired
# only once a newer one covers the whole window.
repo1-retention-full-type=time
repo1-retention-full=${RETENTION_DAYS}
# Small files in bundles, and incrementals that copy changed blocks only.
repo1-bundle=y
repo1-block=y
compress-type=zst
process-max=${process_max}
start-fast=y
delta=y
# archive_command returns as soon as the segment is queued; a background
# process ships the queue. Past the queue limit pgBackRest would drop WAL to
# keep the primary alive: it is half the data volume, and the archive-age
# alarm fires long before it is reached.
archive-async=y
archive-push-queue-max=${ARCHIVE_PUSH_QUEUE_MAX_GIB}GiB
archive-get-queue-max=1GiB
spool-path=${PGBACKREST_SPOOL}
log-path=${PGBACKREST_LOGS}
log-level-console=info
log-level-file=info
# Errors on stderr, where SSM's stderr tail and PostgreSQL's log show them.
log-level-stderr=error

# PostgreSQL logs what archive_command and restore_command print: warnings only.
[global:archive-push]
process-max=2
log-level-console=warn

# A replica asks the archive for each segment before it streams: with S3
# unreachable, give up after 10 s and stream, rather than stall its start.
[global:archive-get]
log-level-console=warn
archive-timeout=10

[${CLUSTER_NAME}]
pg1-path=${data_dir}
pg1-socket-path=/var/run/postgresql
pg1-user=patroni_super
CONF
  write_replica_method
  log "pgBackRest stanza ${CLUSTER_NAME} uses s3://${REPOSITORY_BUCKET}${REPOSITORY_PATH} (${REPOSITORY_REGION})"
}

# write_replica_method: restores the latest backup into an empty data
# directory, or fails within 30 s when the repository has no backup or
# cannot be reached, so that Patroni moves on to a basebackup instead of
# waiting on S3 (a restore from an unreachable repository retries for long).
write_replica_method() {
  install -d -m 0755 "$(dirname "$REPLICA_FROM_REPOSITORY")"
  install_file "$REPLICA_FROM_REPOSITORY" 0755 root:root <<SCRIPT
#!/bin/bash
# Written by pem-ha's patroni document. Patroni runs it as postgres.
set -euo pipefail
stanza=${CLUSTER_NAME}
if ! info=\$(timeout 30 pgbackrest --stanza="\$stanza" --output=json info 2>/dev/null); then
  echo "replica-from-repository: pgbackrest info failed or took over 30 s" >&2
  exit 1
fi
# 0: ok, with a backup; 2: no backup yet; anything else: the repository failed.
status=\$(jq -r '.[0].status | "\\(.code) \\(.message)"' <<<"\$info")
if [[ \$status != "0 "* ]]; then
  echo "replica-from-repository: stanza \${stanza} cannot be restored (\${status})" >&2
  exit 1
fi
exec pgbackrest --stanza="\$stanza" --delta restore
SCRIPT
}
