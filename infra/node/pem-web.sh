# pem-web: the PEM web application (seed: configure-pem-server.sh -t 2) with
# the multi-host string of every backend, so it always finds the primary.
# Runs once per node; a later run finds the marker and stops.
# Parameters: AGENT_ID, BACKEND_ADDRESSES, POSTGRES_MAJOR, SECRET_PREFIX,
# EDB_REPO_TOKEN_SECRET.

MARKER=/var/lib/pem-ha/pem-web-configured
TLS=/etc/pem-ha/tls/current

pem_run_once "$MARKER" "the PEM web application"

install_pem_packages edb-pem

PEM_SERVER_PASSWORD=$(fetch_secret "${SECRET_PREFIX}/pemSuperuser" password)
export PEM_SERVER_PASSWORD
args=(-t 2 -ho "$BACKEND_ADDRESSES" -p 5432 -su pemsuper
  --db-install-path "/usr/lib/postgresql/${POSTGRES_MAJOR}/"
  --use-agent-sslcert "$TLS/pem-agent.crt" --use-agent-sslkey "$TLS/pem-agent.key"
  -aro "agent_id=${AGENT_ID}")
log "running configure-pem-server.sh -t 2 (agent ${AGENT_ID}, backends ${BACKEND_ADDRESSES})"
printf '%s\n' "$PEM_SERVER_PASSWORD" | "$PEM_CONFIGURE" "${args[@]}"
unset PEM_SERVER_PASSWORD
printf '%s agent_id=%s\n' "$(date -u +%FT%TZ)" "$AGENT_ID" >"$MARKER"
log "PEM web application configured"
