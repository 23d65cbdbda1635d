# backup: this backend's part in the backup repository. pgbackrest.conf is
# the patroni document's; this document only runs pgBackRest against it.
# Parameters: ACTION, MEMBER_ADDRESS, CLUSTER_NAME, WAIT_SECONDS.
#   stanza: on the primary, create the stanza (a no-op when it exists) and
#           prove that a WAL segment reaches the repository; on a replica,
#           wait until the primary has created it and read it back. Safe on
#           a cluster that had no backups and after any failover.
#   full, diff: take a backup of that type on this member, which the backup
#           runbook chose (MEMBER_ADDRESS): on a replica pgBackRest reads the
#           files here and starts and stops the backup on the primary through
#           the primary's TLS server (backup-standby); on the primary it
#           does it all here. pgBackRest then expires what the retention no
#           longer needs. A diff with no full in the repository is a full.
#   status: on the primary, print the archive's and the repository's health
#           as backup-status=KEY=VALUE lines (the backup health runbook
#           publishes them as metrics).

TLS=/etc/pem-ha/tls/current
[[ -r $PGBACKREST_CONFIG ]] || die "missing ${PGBACKREST_CONFIG}: the patroni document must run before backup"

as_postgres_pgbackrest() { runuser -u postgres -- pgbackrest --stanza="$CLUSTER_NAME" "$@"; }

member_role() {
  curl -fsS --max-time 5 --cacert "$TLS/ca.crt" "https://${MEMBER_ADDRESS}:8008/patroni" | jq -er '.role'
}

# The stanza's status code in `pgbackrest info`: 0 ok, 2 no backup yet, 1 missing.
stanza_status() {
  as_postgres_pgbackrest --output=json info 2>/dev/null | jq -er '.[0].status.code'
}
stanza_readable() {
  local code
  code=$(stanza_status) && [[ $code == 0 || $code == 2 ]]
}

summary() {
  as_postgres_pgbackrest --output=json info | jq -r '.[0] |
    "stanza \(.name): \(.status.message); \(.backup | length) backup(s); WAL archived \(.archive[-1].min // "none") to \(.archive[-1].max // "none")"'
}

# pgBackRest's exits that say "not yet" on a cluster whose stanza is new,
# retried (bounded by WAIT_SECONDS); any other exit is an error at once.
# 50 LockAcquireError: stanza-create takes every lock on the stanza, and the
#    asynchronous archive-push holds one while it works; pgBackRest does not
#    wait for a lock.
# 82 ArchiveTimeoutError: until the stanza existed every archive_command
#    failed, and PostgreSQL's archiver backs off (up to a minute) after three
#    failures; `check` waits 60 s for its segment, and its next try switches
#    another segment, which wakes the archiver.
readonly PGBACKREST_LOCK_BUSY=50 PGBACKREST_ARCHIVE_TIMEOUT=82
pgbackrest_until_done() {
  local deadline=$((SECONDS + WAIT_SECONDS)) status
  while true; do
    status=0
    as_postgres_pgbackrest "$@" || status=$?
    if ((status == 0)); then
      return 0
    fi
    if ((status != PGBACKREST_LOCK_BUSY && status != PGBACKREST_ARCHIVE_TIMEOUT)); then
      die "pgbackrest $1 failed with exit code ${status}; its log is in ${PGBACKREST_LOGS}"
    fi
    if ((SECONDS >= deadline)); then
      die "pgbackrest $1 still failed with exit code ${status} after ${WAIT_SECONDS} s (50: another pgBackRest command holds the stanza's lock; 82: WAL does not reach the repository, see pg_stat_archiver and ${PGBACKREST_LOGS})"
    fi
    log "pgbackrest $1 exited ${status} (the stanza is locked, or WAL is not archived yet); trying again in 2 s"
    sleep 2
  done
}

ensure_stanza_on_primary() {
  local archive_mode
  archive_mode=$(local_psql -d postgres -Atc 'SHOW archive_mode')
  if [[ $archive_mode != on ]]; then
    die "archive_mode is ${archive_mode} on the running primary; it takes effect at the next restart (patronictl restart ${CLUSTER_NAME} --pending), then run this document again"
  fi
  log "creating stanza ${CLUSTER_NAME} unless it exists"
  pgbackrest_until_done stanza-create
  log "checking that a WAL segment reaches the repository"
  pgbackrest_until_done check
}

# take_backup TYPE ROLE
take_backup() {
  local type=$1 role=$2 standby status=0
  if [[ $role == replica ]]; then
    standby=y
    log "taking a ${type} backup of stanza ${CLUSTER_NAME} on this replica (files read here; the primary starts and stops it)"
  else
    standby=n
    log "taking a ${type} backup of stanza ${CLUSTER_NAME} on this primary"
  fi
  as_postgres_pgbackrest --type="$type" --backup-standby="$standby" backup || status=$?
  if ((status == PGBACKREST_LOCK_BUSY)); then
    die "another backup of stanza ${CLUSTER_NAME} is running (pgBackRest exit 50): let it finish, then run this again"
  elif ((status != 0)); then
    if [[ $role == replica ]]; then
      die "pgbackrest backup --type=${type} on this replica failed with exit code ${status}; its log is in ${PGBACKREST_LOGS}. It reaches the primary through pgBackRest's TLS server on port ${PGBACKREST_SERVER_PORT} (systemctl status ${PGBACKREST_SERVER_UNIT} there); the runbook may be run again"
    fi
    die "pgbackrest backup --type=${type} failed with exit code ${status}; its log is in ${PGBACKREST_LOGS}"
  fi
}

# The archiver's health from PostgreSQL itself, as "KEY VALUE" lines:
# - archive-age-seconds: age of the oldest completed WAL segment that is not
#   in the repository yet (0 when none waits). Not the time since the last
#   archived segment: an idle primary completes no segment, and that is fine.
# - archive-queue-bytes: the WAL waiting for archive_command, which
#   archive-push-queue-max bounds (pgBackRest drops WAL past it).
# - archive-failing: 1 when the archiver's last attempt failed.
# - archive-failed-count: failed attempts since the statistics were reset.
archiver_status() {
  local_psql -d postgres -At -F ' ' <<'SQL'
WITH waiting AS (
  SELECT modification FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'
)
SELECT 'archive-age-seconds', coalesce(floor(extract(epoch FROM now() - min(modification))), 0)::bigint
  FROM waiting
UNION ALL
SELECT 'archive-queue-bytes', count(*) * pg_size_bytes(current_setting('wal_segment_size'))
  FROM waiting
UNION ALL
SELECT 'archive-failing', (coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false))::int
  FROM pg_stat_archiver
UNION ALL
SELECT 'archive-failed-count', failed_count FROM pg_stat_archiver;
SQL
}

# Seconds since the newest backup in the repository ended, and its type;
# nothing when there is none or the repository cannot be read in 60 s (the
# backup-age alarm treats the missing datapoint as breaching).
last_backup_status() {
  local info
  info=$(timeout 60 runuser -u postgres -- pgbackrest --stanza="$CLUSTER_NAME" --output=json info) || {
    log "warning: cannot read stanza ${CLUSTER_NAME} in the repository (see ${PGBACKREST_LOGS}); no backup age reported" >&2
    return 0
  }
  jq -r --argjson now "$(date +%s)" '.[0].backup[-1] // empty |
    "last-backup-age-seconds \($now - .timestamp.stop)\nlast-backup-type \(.type)"' <<<"$info"
}

# The data volume's share and MiB that PostgreSQL may still fill (0 when it is
# not mounted): read first, as it needs no PostgreSQL.
data_volume_status() {
  local data=/var/lib/postgresql avail_blocks total_blocks block_size
  if ! mountpoint -q "$data"; then
    log "warning: the data volume is not mounted at ${data}" >&2
    printf 'data-volume-free-percent 0\ndata-volume-free-mib 0\n'
    return 0
  fi
  read -r avail_blocks total_blocks block_size < <(stat -f -c '%a %b %S' "$data")
  printf 'data-volume-free-percent %s\ndata-volume-free-mib %s\n' \
    $((avail_blocks * 100 / total_blocks)) $((avail_blocks * block_size / 1048576))
}

report_status() {
  local archiver backup key value
  if ! archiver=$(archiver_status); then
    log "warning: PostgreSQL on this primary does not answer: no archive reading"
    archiver='archive-unreadable 1'
  fi
  backup=$(data_volume_status)$'\n'$(last_backup_status)
  while read -r key value; do
    if [[ -n $key ]]; then echo "backup-status=${key}=${value}"; fi
  done <<<"${archiver}"$'\n'"${backup}"
}

case "$ACTION" in
  stanza)
    role=$(member_role) || die "cannot read this member's role from Patroni on ${MEMBER_ADDRESS}:8008"
    case $role in
      primary | master)
        ensure_stanza_on_primary
        ;;
      *)
        log "this member is a ${role}: waiting (up to ${WAIT_SECONDS} s) for the primary to create stanza ${CLUSTER_NAME}"
        wait_until "$WAIT_SECONDS" "stanza ${CLUSTER_NAME} in the repository" stanza_readable
        ;;
    esac
    log "$(summary)"
    ;;
  full | diff)
    role=$(member_role) || die "cannot read this member's role from Patroni on ${MEMBER_ADDRESS}:8008"
    case $role in
      primary | master) take_backup "$ACTION" primary ;;
      replica) take_backup "$ACTION" replica ;;
      *) die "this member is a ${role}: backups are taken on a replica or the primary; run the backup runbook again once Patroni reports it as one" ;;
    esac
    log "$(summary)"
    ;;
  status)
    role=$(member_role) || die "cannot read this member's role from Patroni on ${MEMBER_ADDRESS}:8008"
    case $role in
      primary | master) report_status ;;
      *) die "this member is a ${role}, not the primary: only the primary archives; run the backup health runbook again" ;;
    esac
    ;;
  *) die "Action must be stanza, full, diff or status; got ${ACTION}" ;;
esac
