# Functions of the PEM documents: EDB's repository and the PEM packages.
# Parameters: EDB_REPO_TOKEN_SECRET.

PEM_CONFIGURE=/usr/edb/pem/bin/configure-pem-server.sh

# The EDB token secret holds the bare token or JSON with a `token` field.
edb_repo_token() {
  local raw
  raw=$(fetch_secret_string "$EDB_REPO_TOKEN_SECRET")
  if jq -e 'type == "object"' >/dev/null 2>&1 <<<"$raw"; then
    jq -er '.token' <<<"$raw" || die "secret ${EDB_REPO_TOKEN_SECRET} is JSON without a token field"
  else
    printf '%s' "$raw"
  fi
}

# install_pem_packages PACKAGE...: EDB's apt repository (once), then the packages.
install_pem_packages() {
  if [[ -x $PEM_CONFIGURE ]]; then
    log "PEM is installed (${PEM_CONFIGURE} present)"
    hold_pem_packages "$@"
    return 0
  fi
  if ! ls /etc/apt/sources.list.d/enterprisedb-*.list >/dev/null 2>&1; then
    log "adding EDB's apt repository (token read from ${EDB_REPO_TOKEN_SECRET})"
    local token
    token=$(edb_repo_token)
    # The URL carries the token: give it to curl on stdin, never in argv.
    printf 'url = "https://downloads.enterprisedb.com/%s/enterprise/setup.deb.sh"\n' "$token" |
      curl -1sSLf --config - | bash
  fi
  apt_install "$@"
  [[ -x $PEM_CONFIGURE ]] || die "installing $* did not provide ${PEM_CONFIGURE}"
  hold_pem_packages "$@"
}

# Like the cluster's other software, PEM moves only through the upgrade
# runbook (its pem component): held, and out of unattended-upgrades (common.sh).
hold_pem_packages() {
  apt-mark hold "$@" >/dev/null
  log "held $*: the upgrade runbook's pem component moves them"
}

# The edb-pem version installed here (empty when none).
pem_package_version() {
  # shellcheck disable=SC2016 # dpkg-query's own ${Version} field
  dpkg-query -W -f='${Version}' edb-pem 2>/dev/null || true
}

# The edb-pem version whose configuration step MARKER records (empty when none).
pem_marker_version() { sed -n 's/.* edb-pem=\([^ ]*\).*/\1/p' "$1" 2>/dev/null || true; }

# PEM_UPGRADE_FROM: set by pem_configured when PEM was configured here at
# another edb-pem version than the one now installed (an upgrade's packages).
PEM_UPGRADE_FROM=''

# pem_configured MARKER WHAT: true (and says so) when MARKER says PEM's
# configuration ran here for the edb-pem version installed; false when it
# never ran (its certificate must then exist) or ran for another version (an
# upgrade installed new packages: PEM_UPGRADE_FROM names the old one, and the
# configuration step runs again, as EDB's upgrade guide orders).
pem_configured() {
  local marker=$1 what=$2 tls=$PEM_TLS installed configured
  installed=$(pem_package_version)
  if [[ -f $marker ]]; then
    configured=$(pem_marker_version "$marker")
    if [[ -z $configured && -n $installed ]]; then
      # Configured before markers named the version: what is installed now.
      sed -i "1s/\$/ edb-pem=${installed}/" "$marker"
      configured=$installed
    fi
    if [[ $configured == "$installed" ]]; then
      log "${what} already configured on this node ($(cat "$marker")); checking its certificate wiring"
      return 0
    fi
    PEM_UPGRADE_FROM=$configured
    log "${what} was configured here for edb-pem ${configured}; ${installed} is installed: PEM's configuration step runs again"
    return 1
  fi
  [[ -r $tls/pem-agent.crt && -r $tls/pem-agent.key ]] ||
    die "missing ${tls}/pem-agent.crt or .key: the certificates step must run before PEM"
  return 1
}

# ensure_agent_wiring: agent.cfg names the rotated pem-agent files
# (pem-wiring.sh); the agent is restarted when that changed, or when an
# upgrade's packages replaced it.
ensure_agent_wiring() {
  [[ -f $PEM_AGENT_CFG ]] || die "PEM's agent configuration ${PEM_AGENT_CFG} is missing: configure-pem-server.sh did not make the agent"
  if rewire_agent_certificate; then
    log "restarting pemagent, which reads its certificate at start"
    systemctl restart pemagent
  elif [[ -n $PEM_UPGRADE_FROM ]]; then
    log "restarting pemagent so it runs edb-pem $(pem_package_version)"
    systemctl restart pemagent
  else
    log "agent.cfg already names ${PEM_TLS}/pem-agent.crt and .key"
  fi
}

# scram_verifier: reads a password on stdin and prints its SCRAM-SHA-256
# verifier (RFC 5803, as PostgreSQL stores it: 4096 iterations, 16-byte salt).
# Sent instead of the password, it keeps the password out of the statement
# text, so neither pg_stat_activity nor a failed statement's log line shows it.
# No SASLprep: the stack's generated passwords are ASCII letters and digits.
scram_verifier() {
  # shellcheck disable=SC2016 # Python source: its $ signs are f-string text, not shell.
  /usr/bin/python3 -c '
import base64, hashlib, hmac, os, sys
password = sys.stdin.read().encode()
salt, iterations = os.urandom(16), 4096
salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", hashlib.sha256).digest()).digest()
server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
b64 = lambda raw: base64.b64encode(raw).decode()
print(f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}")'
}
