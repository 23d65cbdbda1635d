# Functions every pem-ha node document shares. The document preamble sets
# `set -euo pipefail` and the parameter variables before this file's text.

# `producer | install_file ...` must record CHANGED_FILES in this shell, not
# in a pipeline subshell: the last command of a pipeline runs here.
shopt -s lastpipe

log() { printf '[pem-ha %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# The script's own stderr, kept on fd 3 so that die() is heard even inside
# checks whose output wait_until silences.
exec 3>&2

die() {
  printf 'pem-ha: %s\n' "$*" >&3
  exit 1
}

# wait_until SECONDS WHAT COMMAND...: runs COMMAND once a second until it
# succeeds; fails naming WHAT when SECONDS have passed.
wait_until() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      die "gave up after ${seconds} s waiting for ${what}"
    fi
    sleep 1
  done
}

# install_file PATH MODE OWNER: writes stdin to PATH when the content differs,
# through a temporary file and a rename so readers never see half a file.
# Prints whether it changed; returns 0 either way.
install_file() {
  local path=$1 mode=$2 owner=$3 tmp
  tmp=$(mktemp "${path}.XXXXXX")
  cat >"$tmp"
  chmod "$mode" "$tmp"
  chown "$owner" "$tmp"
  if [[ -f $path ]] && cmp -s "$tmp" "$path" &&
    [[ $(stat -c '%a %U:%G' "$path") == "$(stat -c '%a %U:%G' "$tmp")" ]]; then
    rm -f "$tmp"
    log "unchanged: ${path}"
    return 0
  fi
  mv -f "$tmp" "$path"
  log "wrote ${path}"
  CHANGED_FILES+=("$path")
}
CHANGED_FILES=()

# fetch_secret_string SECRET_ID: prints a secret's string, read with the
# instance role. Honours AWS_ENDPOINT_URL_SECRETS_MANAGER explicitly because
# Debian 12's botocore predates service endpoint variables.
fetch_secret_string() {
  /usr/bin/python3 - "$1" <<'PY'
import os, sys
import boto3
client = boto3.client(
    "secretsmanager",
    endpoint_url=os.environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER") or None,
)
try:
    print(client.get_secret_value(SecretId=sys.argv[1])["SecretString"])
except Exception as error:  # the message names the secret, never a value
    sys.exit(f"pem-ha: cannot read secret {sys.argv[1]}: {type(error).__name__}")
PY
}

# fetch_secret SECRET_ID FIELD: prints one field of a JSON secret.
fetch_secret() {
  local value
  value=$(fetch_secret_string "$1")
  jq -er --arg field "$2" '.[$field]' <<<"$value" 2>/dev/null ||
    die "secret $1 has no JSON field $2"
}

# apt_install PACKAGE...: installs the packages that are missing, and only
# refreshes the package index when something is missing.
apt_install() {
  local missing=() package
  for package in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$package")
    fi
  done
  if ((${#missing[@]} == 0)); then
    log "packages already installed: $*"
    return 0
  fi
  log "installing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 -q update
  apt-get -o DPkg::Lock::Timeout=600 -q install -y --no-install-recommends "${missing[@]}"
}

# local_psql ARGS...: psql as the Patroni superuser over the local socket;
# pg_ident maps the OS user postgres to it (peer authentication, no password).
local_psql() {
  runuser -u postgres -- psql -h /var/run/postgresql -U patroni_super -X -v ON_ERROR_STOP=1 "$@"
}

# etcd_at ENDPOINTS ARGS...: etcdctl against ENDPOINTS (comma-separated URLs)
# as an etcd member, with the TLS directory the calling script names in TLS.
etcd_at() {
  local endpoints=$1
  shift
  ETCDCTL_API=3 etcdctl --endpoints="$endpoints" --cacert="$TLS/ca.crt" \
    --cert="$TLS/etcd-peer.crt" --key="$TLS/etcd-peer.key" --command-timeout=5s "$@"
}

# service_running UNIT: true when systemd reports the unit active.
service_running() { systemctl is-active --quiet "$1"; }

# apply_service UNIT CONFIG_FILE reload|restart [start options]: enables UNIT,
# starts it when stopped, and applies a CONFIG_FILE that install_file changed
# this run with a reload or a restart; otherwise leaves it alone.
apply_service() {
  local unit=$1 config=$2 apply=$3
  shift 3
  systemctl enable "$unit" >/dev/null 2>&1 || die "systemctl enable ${unit} failed"
  if ! service_running "$unit"; then
    log "starting ${unit}"
    systemctl start "$@" "$unit"
  elif [[ " ${CHANGED_FILES[*]} " == *" ${config} "* ]]; then
    log "${config} changed: ${apply}ing ${unit}"
    systemctl "$apply" "$unit"
  else
    log "${unit} already running with this configuration"
  fi
}
