# pem-backend: the PEM server's backend database configuration on a Patroni
# member (seed: configure-pem-server.sh -t 3), on the primary first, then on
# the standbys. PEM's configuration runs once per node and edb-pem version (a
# marker records it); after an upgrade's packages it runs again on the
# primary only (the schema step), and a standby waits for its result to
# replicate. The agent's use of the rotated certificate is checked on every run.
# Parameters: MEMBER_ADDRESS, AGENT_ID, BACKEND_ADDRESSES, TRUSTED_CIDRS,
# POSTGRES_MAJOR, SECRET_PREFIX, EDB_REPO_TOKEN_SECRET.

MARKER=/var/lib/pem-ha/pem-backend-configured
DONE_COMMENT='pem-ha: PEM server configured on the primary'
# How long a standby waits for the primary's schema step after an upgrade.
UPGRADE_WAIT_SECONDS=600
TLS=$PEM_TLS

configure_pem_backend() {
  install_pem_packages edb-pem
  installed=$(pem_package_version)

  primary_status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$TLS/ca.crt" "https://${MEMBER_ADDRESS}:8008/primary" || true)
  case "$primary_status" in
    200) role=primary ;;
    503) role=standby ;;
    *) die "cannot tell this member's role from Patroni's REST API (GET /primary answered ${primary_status:-nothing})" ;;
  esac

  # -ci only seeds a pg_hba line that Patroni replaces with patroni.yml's rules;
  # given so the script does not prompt for it.
  # The seed's host list: every backend, with this node as the loopback address.
  hosts=$(tr , '\n' <<<"$BACKEND_ADDRESSES" | sed "s/^${MEMBER_ADDRESS//./\\.}\$/127.0.0.1/" | paste -sd, -)
  PEM_SERVER_PASSWORD=$(fetch_secret "${SECRET_PREFIX}/pemSuperuser" password)
  export PEM_SERVER_PASSWORD

  if [[ $role == primary ]]; then
    log "creating the pemsuper role on the primary (if it does not exist), with a SCRAM verifier made here"
    verifier=$(printf '%s' "$PEM_SERVER_PASSWORD" | scram_verifier)
    [[ $verifier == SCRAM-SHA-256\$4096:* ]] || die "could not compute the pemsuper SCRAM verifier"
    # On stdin, never argv; a verifier is base64 fields and separators, nothing to quote.
    local_psql -q -d postgres <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pemsuper') THEN
    CREATE ROLE pemsuper LOGIN SUPERUSER PASSWORD '${verifier}';
  END IF;
END \$\$;
SQL
  else
    # A standby's configuration reads what the primary's finished run wrote;
    # the primary marks that on the pem database, which replicates here.
    wait_until 1800 "the primary's PEM configuration to reach this standby" primary_done
    if [[ -n $PEM_UPGRADE_FROM ]]; then
      # EDB's HA upgrade guide: the schema step runs on the primary alone; a
      # standby gets the packages, and the step's result by replication.
      wait_until "$UPGRADE_WAIT_SECONDS" "the primary's PEM ${installed} schema step to reach this standby" primary_done "$installed"
      unset PEM_SERVER_PASSWORD
      log "standby: PEM ${installed}'s schema step ran on the primary and reached this node; PEM's configuration does not run here"
      record_configured standby
      return 0
    fi
  fi

  args=(-t 3 -ho "$hosts" -p 5432 -su pemsuper --asb-host-name 127.0.0.1
    --replication-solution patroni --replication-role "$role" --db-unitfile patroni
    --db-install-path "/usr/lib/postgresql/${POSTGRES_MAJOR}/" -ci "${TRUSTED_CIDRS%%,*}"
    --use-agent-sslcert "$TLS/pem-agent.crt" --use-agent-sslkey "$TLS/pem-agent.key"
    -aro "agent_id=${AGENT_ID}")
  [[ $role == primary ]] && args+=(--skip-db-certificate)

  log "running configure-pem-server.sh -t 3 as the ${role} (agent ${AGENT_ID}, hosts ${hosts})"
  printf '%s\n' "$PEM_SERVER_PASSWORD" | "$PEM_CONFIGURE" "${args[@]}"
  unset PEM_SERVER_PASSWORD
  if [[ $role == primary ]]; then
    local_psql -q -d postgres -c "COMMENT ON DATABASE pem IS '${DONE_COMMENT} (edb-pem ${installed})'"
  fi
  record_configured "$role"
}

# primary_done [VERSION]: the primary's configuration (for edb-pem VERSION,
# when given) has reached this node's copy of the pem database.
primary_done() {
  local comment
  comment=$(local_psql -qAt -d postgres -c \
    "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = 'pem'")
  [[ $comment == "$DONE_COMMENT"* && (-z ${1:-} || $comment == *"(edb-pem ${1})") ]]
}

record_configured() {
  printf '%s agent_id=%s role=%s edb-pem=%s\n' "$(date -u +%FT%TZ)" "$AGENT_ID" "$1" "$installed" >"$MARKER"
  log "PEM backend configured as ${1} (edb-pem ${installed})"
}

pem_configured "$MARKER" "the PEM backend" || configure_pem_backend
ensure_agent_wiring
