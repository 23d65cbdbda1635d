# pem-web: the PEM web application (seed: configure-pem-server.sh -t 2) with
# the multi-host string of every backend, so it always finds the primary.
# PEM's configuration runs once per node and edb-pem version (a marker
# records it: an upgrade's packages make it run again, as EDB's upgrade guide
# orders); the wiring of the agent's and Apache's certificates to the rotated
# files is checked on every run.
# Parameters: AGENT_ID, BACKEND_ADDRESSES, POSTGRES_MAJOR, SECRET_PREFIX,
# EDB_REPO_TOKEN_SECRET.

MARKER=/var/lib/pem-ha/pem-web-configured
TLS=$PEM_TLS
# Where PEM 10 puts its site when it sets up NGINX (its default without USE_NGINX=0).
PEM_NGINX_SITE=/etc/nginx/sites-available/edb-pem.conf

configure_pem_web() {
  install_pem_packages edb-pem
  PEM_SERVER_PASSWORD=$(fetch_secret "${SECRET_PREFIX}/pemSuperuser" password)
  export PEM_SERVER_PASSWORD
  # PEM 10 serves its web application with NGINX unless USE_NGINX=0; pem-ha
  # wires Apache's site (EDB, "Configuring the PEM server on Linux").
  export USE_NGINX=0
  local args=(-t 2 -ho "$BACKEND_ADDRESSES" -p 5432 -su pemsuper
    --db-install-path "/usr/lib/postgresql/${POSTGRES_MAJOR}/"
    --use-agent-sslcert "$TLS/pem-agent.crt" --use-agent-sslkey "$TLS/pem-agent.key"
    -aro "agent_id=${AGENT_ID}")
  log "running configure-pem-server.sh -t 2 (agent ${AGENT_ID}, backends ${BACKEND_ADDRESSES})"
  printf '%s\n' "$PEM_SERVER_PASSWORD" | "$PEM_CONFIGURE" "${args[@]}"
  unset PEM_SERVER_PASSWORD
  printf '%s agent_id=%s edb-pem=%s\n' "$(date -u +%FT%TZ)" "$AGENT_ID" "$(pem_package_version)" >"$MARKER"
  log "PEM web application configured"
}

pem_configured "$MARKER" "the PEM web application" || configure_pem_web
ensure_agent_wiring
if [[ ! -f $PEM_SITE && -f $PEM_NGINX_SITE ]]; then
  # The ALB does not verify its targets' certificates: this host keeps serving.
  log "WARNING: PEM serves its web application with NGINX on this host (${PEM_NGINX_SITE}; configured before pem-ha chose Apache), with PEM's own certificate, which no rotation renews; the replacement runbook ({\"node\": \"<this web host>\"}) rebuilds it with Apache and the rotated pem-web certificate"
  exit 0
fi
[[ -f $PEM_SITE ]] || die "PEM's Apache site ${PEM_SITE} is missing: was PEM configured with Apache (USE_NGINX=0)?"
if [[ -n $PEM_UPGRADE_FROM ]]; then
  rewire_web_certificate || true
  # A graceful reload keeps the old web application loaded in Apache's parent.
  log "restarting Apache so 8443 serves edb-pem $(pem_package_version)'s web application"
  systemctl restart apache2
elif rewire_web_certificate; then
  if service_running apache2; then
    log "reloading Apache gracefully so 8443 serves ${PEM_TLS}/pem-web.crt"
    systemctl reload apache2
  else
    log "Apache is not running: starting it"
    systemctl start apache2
  fi
else
  log "PEM's Apache site already serves ${PEM_TLS}/pem-web.crt"
fi
