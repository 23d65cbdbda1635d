# pgbackrest: the backup repository's client configuration. The patroni
# document writes it before Patroni starts, because archive_command and the
# replica methods call pgBackRest. Credentials come from the instance role
# (repo1-s3-key-type=auto): no key is written anywhere.

PGBACKREST_CONFIG=/etc/pgbackrest/pgbackrest.conf
# Patroni's first replica method (patroni.yml's create_replica_methods).
REPLICA_FROM_REPOSITORY=/usr/local/lib/pem-ha/replica-from-repository
PGBACKREST_SPOOL=/var/spool/pgbackrest
PGBACKREST_LOGS=/var/log/pgbackrest
# A backup on a replica starts and stops on the primary through its TLS server.
PGBACKREST_SERVER_UNIT=pgbackrest-server
PGBACKREST_SERVER_PORT=8432
PGBACKREST_TLS=/etc/pem-ha/tls/current
# Set by the restore document (set-aside) and removed by the patroni document
# once this member runs normally again: until then the data is a restore's work.
RESTORE_MARKER=/var/lib/pem-ha/restore-in-progress
restore_in_progress() { [[ -e $RESTORE_MARKER ]]; }

# peer_sections DATA_DIR: pg2, pg3, ...: the other backends by name, through
# their TLS servers, with this node's `pgbackrest` certificate (CN = its name).
peer_sections() {
  local index=2 name key
  local -a names
  IFS=, read -r -a names <<<"$BACKEND_NAMES"
  for name in "${names[@]}"; do
    [[ $name != "$MEMBER_NAME" ]] || continue
    for key in "host=${name}" host-type=tls "host-port=${PGBACKREST_SERVER_PORT}" \
      "host-cert-file=${PGBACKREST_TLS}/pgbackrest.crt" "host-key-file=${PGBACKREST_TLS}/pgbackrest.key" \
      "host-ca-file=${PGBACKREST_TLS}/ca.crt" "path=$1" socket-path=/var/run/postgresql user=patroni_super; do
      echo "pg${index}-${key}"
    done
    index=$((index + 1))
  done
}

# write_pgbackrest_config DATA_DIR: the configuration of stanza CLUSTER_NAME,
# from the patroni document's parameters.
write_pgbackrest_config() {
  local data_dir=$1 cores process_max name server_auth=""
  local -a names
  command -v pgbackrest >/dev/null || die "pgbackrest is not installed: the common document installs it on backends"
  # Backups and restores use every core up to eight; archiving stays at two so
  # that a backup never starves it.
  cores=$(nproc)
  process_max=$((cores > 8 ? 8 : cores))
  install -d -m 0750 -o postgres -g postgres "$PGBACKREST_SPOOL" "$PGBACKREST_LOGS"
  install -d -m 0755 -o root -g root /etc/pgbackrest
  IFS=, read -r -a names <<<"$BACKEND_NAMES"
  for name in "${names[@]}"; do server_auth+="tls-server-auth=${name}=${CLUSTER_NAME}"$'\n'; done
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

# The TLS server other backends reach (backups from a replica): only the
# cluster's backends, by the CN of their certificate, for this stanza only.
[global:server]
tls-server-address=${MEMBER_ADDRESS}
tls-server-port=${PGBACKREST_SERVER_PORT}
tls-server-cert-file=${PGBACKREST_TLS}/pgbackrest.crt
tls-server-key-file=${PGBACKREST_TLS}/pgbackrest.key
tls-server-ca-file=${PGBACKREST_TLS}/ca.crt
${server_auth}
# pg1 is this node. pgBackRest asks PostgreSQL which one is the primary.
[${CLUSTER_NAME}]
pg1-path=${data_dir}
pg1-socket-path=/var/run/postgresql
pg1-user=patroni_super
$(peer_sections "$data_dir")
CONF
  write_replica_method
  write_server_unit
  log "pgBackRest stanza ${CLUSTER_NAME} uses s3://${REPOSITORY_BUCKET}${REPOSITORY_PATH} (${REPOSITORY_REGION})"
}

# write_server_unit: the TLS server's unit (patroni.sh starts it). It reads
# its certificate at start only: the certificates document restarts it.
write_server_unit() {
  install_file "/etc/systemd/system/${PGBACKREST_SERVER_UNIT}.service" 0644 root:root <<UNIT
[Unit]
Description=pgBackRest TLS server (pem-ha ${CLUSTER_NAME})
After=network-online.target
# It serves the data directory: only with the data volume mounted.
RequiresMountsFor=/var/lib/postgresql

[Service]
Type=simple
User=postgres
Group=postgres
ExecStart=/usr/bin/pgbackrest server
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
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
