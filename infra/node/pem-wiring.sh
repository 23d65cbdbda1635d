# PEM's agent and web server, pointed at the rotated certificate files in
# place. Shared by the PEM documents (after PEM's own configuration) and the
# certificates document (before it restarts the agent and reloads Apache), so
# a renewal reaches PEM even on a node configured before this wiring existed.
#
# - The agent: agent.cfg's agent_ssl_crt and agent_ssl_key (EDB, "Modifying
#   the agent configuration"), instead of the copies configure-pem-server.sh
#   may leave under its certificate path (-acp, /root/.pem), which no
#   rotation reaches. The agent reads both at start only.
# - Apache (PEM's site on 8443, EDB's path on Debian and Ubuntu):
#   SSLCertificateFile and SSLCertificateKeyFile (EDB, "Managing
#   certificates"); the chain file holds the intermediate, so no
#   SSLCertificateChainFile. Checked with apachectl configtest first.

PEM_AGENT_CFG=/usr/edb/pem/agent/etc/agent.cfg
PEM_SITE=/etc/apache2/sites-available/edb-ssl-pem.conf
PEM_TLS=/etc/pem-ha/tls/current

# set_setting FILE PATTERN LINE: replaces the lines matching PATTERN (an
# extended regex for the whole line, without '|') with LINE, or appends LINE
# when none does. Prints "changed" when the file changed.
set_setting() {
  local file=$1 pattern=$2 line=$3 before
  before=$(sha256sum "$file")
  if grep -Eq "^${pattern}$" "$file"; then
    # Paths and settings here hold no '|' or '&'.
    sed -i -E "s|^${pattern}\$|${line}|" "$file"
  else
    printf '%s\n' "$line" >>"$file"
  fi
  [[ $(sha256sum "$file") == "$before" ]] || echo changed
}

# rewire_agent_certificate: true when it changed agent.cfg (which exists).
rewire_agent_certificate() {
  local changed
  changed=$(set_setting "$PEM_AGENT_CFG" 'agent_ssl_crt[[:space:]]*=.*' "agent_ssl_crt=${PEM_TLS}/pem-agent.crt")
  changed+=$(set_setting "$PEM_AGENT_CFG" 'agent_ssl_key[[:space:]]*=.*' "agent_ssl_key=${PEM_TLS}/pem-agent.key")
  if [[ -z $changed ]]; then return 1; fi
  log "agent.cfg now names ${PEM_TLS}/pem-agent.crt and .key (rotated in place)" >&2
}

# rewire_web_certificate: true when it changed PEM's Apache site (which
# exists); a site Apache would refuse is put back as it was, and the run stops.
rewire_web_certificate() {
  local directive backup changed refused
  for directive in SSLCertificateFile SSLCertificateKeyFile; do
    grep -Eq "^[[:space:]]*${directive}[[:space:]]" "$PEM_SITE" ||
      die "${PEM_SITE} has no ${directive} line to point at ${PEM_TLS}: PEM's site is not what pem-ha expects"
  done
  backup=$(mktemp)
  cp -p "$PEM_SITE" "$backup"
  changed=$(set_setting "$PEM_SITE" '([[:space:]]*)SSLCertificateFile[[:space:]].*' "\\1SSLCertificateFile ${PEM_TLS}/pem-web.crt")
  changed+=$(set_setting "$PEM_SITE" '([[:space:]]*)SSLCertificateKeyFile[[:space:]].*' "\\1SSLCertificateKeyFile ${PEM_TLS}/pem-web.key")
  if grep -Eq '^[[:space:]]*SSLCertificateChainFile[[:space:]]' "$PEM_SITE"; then
    sed -i -E '/^[[:space:]]*SSLCertificateChainFile[[:space:]]/d' "$PEM_SITE"
    changed+=changed
  fi
  if [[ -z $changed ]]; then
    rm -f "$backup"
    return 1
  fi
  if ! refused=$(apachectl configtest 2>&1); then
    cp -p "$backup" "$PEM_SITE"
    rm -f "$backup"
    die "Apache refuses ${PEM_SITE} with ${PEM_TLS}/pem-web.crt ($(tail -n 1 <<<"$refused")); the site is left as it was"
  fi
  rm -f "$backup"
  log "PEM's Apache site now serves ${PEM_TLS}/pem-web.crt and .key" >&2
}
