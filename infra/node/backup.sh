# backup: this backend's part in the backup repository. pgbackrest.conf is
# the patroni document's; this document only runs pgBackRest against it.
# Parameters: ACTION, MEMBER_ADDRESS, CLUSTER_NAME, WAIT_SECONDS.
#   stanza: on the primary, create the stanza (a no-op when it exists) and
#           prove that a WAL segment reaches the repository; on a replica,
#           wait until the primary has created it and read it back. Safe on
#           a cluster that had no backups and after any failover.

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

# stanza-create takes every lock on the stanza, and the asynchronous
# archive-push holds one while it works (it retries on its own until the
# stanza exists). pgBackRest does not wait for a lock: it exits 50
# (LockAcquireError), so that exit, and only that one, is retried, bounded.
readonly PGBACKREST_LOCK_BUSY=50
pgbackrest_when_unlocked() {
  local deadline=$((SECONDS + WAIT_SECONDS)) status
  while true; do
    status=0
    as_postgres_pgbackrest "$@" || status=$?
    if ((status == 0)); then
      return 0
    fi
    if ((status != PGBACKREST_LOCK_BUSY)); then
      die "pgbackrest $1 failed with exit code ${status}; its log is in ${PGBACKREST_LOGS}"
    fi
    if ((SECONDS >= deadline)); then
      die "pgbackrest $1 could not take the stanza's lock in ${WAIT_SECONDS} s; another pgBackRest command holds it (ps -u postgres -f | grep pgbackrest)"
    fi
    log "stanza ${CLUSTER_NAME} is locked by another pgBackRest command (the asynchronous archiver); trying $1 again in 2 s"
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
  pgbackrest_when_unlocked stanza-create
  log "checking that a WAL segment reaches the repository"
  pgbackrest_when_unlocked check
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
  *) die "Action must be stanza; got ${ACTION}" ;;
esac
