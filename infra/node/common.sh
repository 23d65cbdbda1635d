# common: operating-system preparation and the packages of this node's tier.
# Parameters: TIER (etcd|backend|web), POSTGRES_MAJOR, PACKAGE_SOURCE (pgdg|os).

# shellcheck source=/dev/null
. /etc/os-release
case "${ID}-${VERSION_ID}" in
  ubuntu-24.04 | debian-12 | debian-13) log "operating system: ${PRETTY_NAME}" ;;
  *) die "unsupported operating system ${ID} ${VERSION_ID}; pem-ha supports ubuntu 24.04, debian 12 and debian 13" ;;
esac

install -d -m 0755 /etc/pem-ha /var/lib/pem-ha

# The distribution's own PostgreSQL is only used where it is the configured major.
if [[ $PACKAGE_SOURCE == os && $TIER != etcd ]]; then
  os_major=$(apt-cache show --no-all-versions postgresql 2>/dev/null |
    sed -n 's/^Depends: postgresql-\([0-9]*\).*/\1/p' | head -n 1)
  if [[ -n $os_major && $os_major != "$POSTGRES_MAJOR" ]]; then
    die "PackageSource os gives PostgreSQL ${os_major} on ${ID} ${VERSION_ID}, but ${POSTGRES_MAJOR} is configured"
  fi
fi

add_pgdg_repository() {
  if [[ -f /etc/apt/sources.list.d/pgdg.list || -f /etc/apt/sources.list.d/pgdg.sources ]]; then
    log "PGDG apt repository already configured"
    return 0
  fi
  apt_install postgresql-common ca-certificates
  log "adding the PGDG apt repository (signed by the key postgresql-common ships)"
  /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y
}

# Debian's packaging creates and starts a `main` cluster on install unless told
# not to; Patroni owns the only cluster on these nodes.
disable_main_cluster() {
  local conf=/etc/postgresql-common/createcluster.conf
  if grep -Eq '^[[:space:]]*create_main_cluster[[:space:]]*=[[:space:]]*false' "$conf"; then
    log "automatic main cluster already disabled"
    return 0
  fi
  log "disabling the automatic main cluster in ${conf}"
  sed -i -E 's/^[#[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' "$conf"
  grep -Eq '^create_main_cluster = false' "$conf" || echo 'create_main_cluster = false' >>"$conf"
}

packages=(ca-certificates openssl python3 python3-boto3 python3-yaml jq curl)
case "$TIER" in
  etcd)
    apt_install "${packages[@]}" etcd-server etcd-client
    ;;
  backend | web)
    apt_install "${packages[@]}" postgresql-common
    [[ $PACKAGE_SOURCE == pgdg ]] && add_pgdg_repository
    disable_main_cluster
    if [[ $TIER == backend ]]; then
      apt_install "postgresql-${POSTGRES_MAJOR}" "postgresql-client-${POSTGRES_MAJOR}" patroni pgbackrest
    else
      apt_install "postgresql-client-${POSTGRES_MAJOR}"
    fi
    ;;
  *) die "Tier must be etcd, backend or web; got ${TIER}" ;;
esac

# The cluster's own software moves only through the upgrade runbook, one node
# at a time: held, kept out of unattended-upgrades, and never restarted by
# needrestart after a library update.
case "$TIER" in
  etcd) held=(etcd-server etcd-client) ;;
  backend) held=("postgresql-${POSTGRES_MAJOR}" "postgresql-client-${POSTGRES_MAJOR}" patroni pgbackrest) ;;
  *) held=("postgresql-client-${POSTGRES_MAJOR}") ;;
esac
apt-mark hold "${held[@]}" >/dev/null
log "held ${held[*]}: the upgrade runbook moves them"
install_file /etc/apt/apt.conf.d/51pem-ha-unattended-upgrades 0644 root:root <<'APT'
// pem-ha: these move only through the upgrade runbook, one node at a time.
Unattended-Upgrade::Package-Blacklist { "etcd-"; "postgresql-"; "libpq5"; "patroni"; "pgbackrest"; "edb-pem"; };
APT
if [[ -d /etc/needrestart ]]; then
  install -d -m 0755 /etc/needrestart/conf.d
  install_file /etc/needrestart/conf.d/pem-ha.conf 0644 root:root <<'NEEDRESTART'
# pem-ha: restarts of the cluster's services belong to its runbooks.
$nrconf{override_rc}->{qr(^(etcd|patroni|postgresql|pgbackrest).*)} = 0;
NEEDRESTART
fi

# A cluster created before the setting above took effect holds no data: drop it.
if [[ $TIER == backend ]] && pg_lsclusters -h 2>/dev/null | awk '{print $1, $2}' | grep -qx "${POSTGRES_MAJOR} main"; then
  log "dropping the package's default ${POSTGRES_MAJOR}/main cluster (Patroni manages its own)"
  pg_dropcluster --stop "$POSTGRES_MAJOR" main
fi

# Distribution services stay off: Patroni starts PostgreSQL, and etcd is
# started by its own document once its configuration exists.
for unit in postgresql patroni etcd; do
  if systemctl is-enabled --quiet "$unit" 2>/dev/null && [[ ! -f /etc/pem-ha/${unit}.managed ]]; then
    log "disabling the distribution's ${unit} service until pem-ha configures it"
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  fi
done

printf 'TIER=%s\nPOSTGRES_MAJOR=%s\n' "$TIER" "$POSTGRES_MAJOR" | install_file /etc/pem-ha/node.env 0644 root:root
log "common preparation done for a ${TIER} node"

# The roots this node trusts now, for the bootstrap's CA step: a new cluster CA
# is refused while any node trusts a root the CA secrets do not hold.
if [[ -s /etc/pem-ha/tls/current/ca.crt ]]; then
  /usr/bin/python3 - /etc/pem-ha/tls/current/ca.crt <<'PY'
import base64, hashlib, re, sys
pem = open(sys.argv[1]).read()
for body in re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.S):
    print("trusted-root=" + hashlib.sha256(base64.b64decode("".join(body.split()))).hexdigest())
PY
else
  log "this node trusts no cluster root yet"
fi
