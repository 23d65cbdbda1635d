# failover: this backend's part in the failover runbook. Neither action
# touches PostgreSQL or Patroni.
# Parameters: ACTION, SPACE_RESERVE_MIB.
#   inspect:         report, as failover-inspect=KEY=VALUE lines, the data
#                    volume (mounted, size, free to postgres, the space
#                    reserve, and below how much free it counts as full:
#                    the reserve's size) and PostgreSQL (primary, replica or down, and
#                    its WAL position: flushed on a primary, received or
#                    replayed on a replica). Always succeeds: what cannot be
#                    read is reported as such.
#   release-reserve: remove the space reserve, so a primary whose WAL filled
#                    the volume has room to shut down cleanly and hand over.

PGHOME=/var/lib/postgresql
RESERVE=${PGHOME}/pem-ha-space-reserve

report() { echo "failover-inspect=$1=$2"; }

# "ROLE LSN" from the local PostgreSQL within 10 s, or nothing when it does not answer.
postgres_position() {
  PGCONNECT_TIMEOUT=5 PGOPTIONS='-c statement_timeout=5000' local_psql -d postgres -At -F ' ' -c "
    SELECT CASE WHEN pg_is_in_recovery() THEN 'replica' ELSE 'primary' END,
           CASE WHEN pg_is_in_recovery()
                THEN greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
                ELSE pg_current_wal_flush_lsn() END" 2>/dev/null || true
}

inspect() {
  local role lsn reserve_mib=0 avail_blocks total_blocks block_size
  if mountpoint -q "$PGHOME"; then
    report mounted 1
    read -r avail_blocks total_blocks block_size < <(stat -f -c '%a %b %S' "$PGHOME")
    report volume-size-mib $((total_blocks * block_size / 1048576))
    report volume-free-mib $((avail_blocks * block_size / 1048576))
    if [[ -f $RESERVE ]]; then reserve_mib=$(($(stat -c '%s' "$RESERVE") / 1048576)); fi
    report reserve-mib "$reserve_mib"
    report full-below-mib "$SPACE_RESERVE_MIB"
  else
    report mounted 0
    log "the data volume is not mounted at ${PGHOME}"
  fi
  read -r role lsn <<<"$(postgres_position)"
  report postgres "${role:-down}"
  report lsn "${lsn:-}"
  log "PostgreSQL here: ${role:-not answering}${lsn:+ at ${lsn}}"
}

release_reserve() {
  if [[ ! -f $RESERVE ]]; then
    log "no space reserve at ${RESERVE} (released before, or never made: the volume had no room for it)"
    return 0
  fi
  local mib
  mib=$(($(stat -c '%s' "$RESERVE") / 1048576))
  rm -f -- "$RESERVE"
  sync -f "$PGHOME"
  log "released the ${mib} MiB space reserve: $(($(stat -f -c '%a * %S' "$PGHOME") / 1048576)) MiB free on ${PGHOME} now; the patroni document makes a new one (${SPACE_RESERVE_MIB} MiB) once there is room"
}

case "$ACTION" in
  inspect) inspect ;;
  release-reserve) release_reserve ;;
  *) die "Action must be inspect or release-reserve; got ${ACTION}" ;;
esac
