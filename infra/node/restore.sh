# restore: this backend's part in a point-in-time restore of the whole
# cluster (the restore runbook runs the actions in this order). Each action is
# safe to run again.
# Parameters: ACTION, CLUSTER_NAME, POSTGRES_MAJOR, KEEP_DATA, WAIT_SECONDS.
#   info:      print the repository's backups as one repository-backups=JSON
#              line (the runbook checks the target against them).
#   stop:      stop Patroni, and with it PostgreSQL, and wait until both are gone.
#   clear-dcs: remove the cluster's state from etcd (leader, members, history,
#              configuration), as `patronictl remove` does.
#   set-aside: move the data directory out of Patroni's way: renamed to
#              <data>.before-restore-<UTC time> when KEEP_DATA is true, removed
#              otherwise; when a restore that did not finish left it, removed
#              (the data from before that restore was kept then). The member
#              marker goes with it.

PGHOME=/var/lib/postgresql
DATA_DIR=${PGHOME}/${POSTGRES_MAJOR}/${CLUSTER_NAME}
CONFIG=/etc/patroni/patroni.yml
MEMBER_MARKER=/var/lib/pem-ha/patroni-member

postgres_running() { runuser -u postgres -- pg_isready -q -h /var/run/postgresql; }
# pg_ctl status reads postmaster.pid and asks whether that process lives.
postgres_stopped() {
  ! runuser -u postgres -- "/usr/lib/postgresql/${POSTGRES_MAJOR}/bin/pg_ctl" status -D "$DATA_DIR" >/dev/null 2>&1
}

case "$ACTION" in
  info)
    [[ -r $PGBACKREST_CONFIG ]] || die "missing ${PGBACKREST_CONFIG}: this backend was never bootstrapped"
    info=$(timeout 120 runuser -u postgres -- pgbackrest --stanza="$CLUSTER_NAME" --output=json info) ||
      die "cannot read stanza ${CLUSTER_NAME} in the repository (see ${PGBACKREST_LOGS})"
    echo "repository-backups=$(jq -c '[.[0].backup[] | {label, type,
      start: .timestamp.start, stop: .timestamp.stop,
      lsnStart: .lsn.start, lsnStop: .lsn.stop}]' <<<"$info")"
    ;;
  stop)
    if service_running patroni; then
      log "stopping Patroni (it stops PostgreSQL first)"
      systemctl stop patroni
    else
      log "Patroni is not running"
    fi
    wait_until "$WAIT_SECONDS" "PostgreSQL on ${DATA_DIR} to stop" postgres_stopped
    if postgres_running; then
      die "a PostgreSQL server still answers on /var/run/postgresql after Patroni stopped"
    fi
    log "Patroni and PostgreSQL are stopped"
    ;;
  clear-dcs)
    patronictl_json() { runuser -u postgres -- patronictl -c "$CONFIG" list -f json "$CLUSTER_NAME"; }
    members=$(patronictl_json) || die "cannot read cluster ${CLUSTER_NAME} from etcd with patronictl"
    if jq -e 'length == 0' >/dev/null <<<"$members"; then
      log "etcd holds nothing of ${CLUSTER_NAME} already"
    else
      # patronictl asks for the name, a confirmation and, while a leader key
      # is held, the leader's name: the answers are its documented ones.
      leader=$(jq -r '[.[] | select(.Role == "Leader") | .Member][0] // ""' <<<"$members")
      log "removing cluster ${CLUSTER_NAME}'s state from etcd${leader:+ (leader key held by ${leader})}"
      printf '%s\nYes I am aware\n%s\n' "$CLUSTER_NAME" "$leader" |
        runuser -u postgres -- patronictl -c "$CONFIG" remove "$CLUSTER_NAME" >/dev/null
      members=$(patronictl_json)
      if ! jq -e 'length == 0' >/dev/null <<<"$members"; then
        die "etcd still lists members of ${CLUSTER_NAME} after patronictl remove: is Patroni running on a backend? ${members}"
      fi
      log "etcd holds nothing of ${CLUSTER_NAME}"
    fi
    ;;
  set-aside)
    postgres_stopped || die "PostgreSQL still runs on ${DATA_DIR}: run the stop action first"
    if [[ ! -e ${DATA_DIR}/PG_VERSION ]]; then
      rm -rf "$DATA_DIR"
      log "${DATA_DIR} holds no cluster: nothing to set aside"
    elif restore_in_progress; then
      # An earlier restore did not finish: this directory is its partial
      # work, and the data from before it was set aside then.
      rm -rf "$DATA_DIR"
      log "removed ${DATA_DIR}, left by a restore that did not finish (started $(cat "$RESTORE_MARKER"))"
    elif [[ $KEEP_DATA == true ]]; then
      aside=${DATA_DIR}.before-restore-$(date -u +%Y%m%dT%H%M%SZ)
      mv "$DATA_DIR" "$aside"
      log "moved ${DATA_DIR} to ${aside} (remove it once the restored cluster is accepted)"
    else
      rm -rf "$DATA_DIR"
      log "removed ${DATA_DIR}: this member is cloned again from the restored leader"
    fi
    # Empty, not absent: pgBackRest restores into an existing directory, and
    # Patroni bootstraps or clones only into an empty one.
    install -d -m 0700 -o postgres -g postgres "$DATA_DIR"
    restore_in_progress || date -u +%Y-%m-%dT%H:%M:%SZ >"$RESTORE_MARKER"
    rm -f "$MEMBER_MARKER"
    ;;
  *) die "Action must be info, stop, clear-dcs or set-aside; got ${ACTION}" ;;
esac
