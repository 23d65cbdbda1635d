#!/bin/bash
# Builds (once) the Debian 13 (trixie) root that rig nodes of amiFamily
# debian-13 use as their overlay's lower layer: PostgreSQL 17, Patroni 4,
# etcd 3.5, HAProxy and pgBackRest from Debian's registry, with no apt source
# left (nodes have no route out) and no PostgreSQL cluster (Patroni makes its
# own). The root is cached under /var/cache/pem-ha-rig/roots and rebuilt only
# when the package list below changes. Idempotent; run as root.
# Usage: build-root.sh [ROOTS_DIR]
set -euo pipefail

roots=${1:-/var/cache/pem-ha-rig/roots}
suite=trixie
mirror=${PEM_HA_RIG_DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$roots/debian-13
# What the node documents, the systemctl stand-in and the rig's stand-ins run
# (Moto is the S3 stand-in; Apache serves the PEM double's site as PEM's own
# would; debootstrap does not resolve the virtual package python3-cryptography
# needs, so python3-cffi-backend is named).
packages=(postgresql-17 postgresql-client-17 postgresql-common patroni python3-psycopg2
  etcd-server etcd-client haproxy pgbackrest apache2 python3 python3-boto3 python3-yaml
  ca-certificates openssl curl jq iproute2 procps util-linux mount e2fsprogs
  python3-moto python3-flask-cors python3-cffi-backend)
# The root records what it was built from; a different list means a rebuild.
recipe="suite=${suite} packages=${packages[*]}"

if [[ $(id -u) -ne 0 ]]; then
  echo "rig/build-root.sh: run as root (debootstrap and chroot need it)" >&2
  exit 1
fi
# What the root runs, for the log: Patroni, etcd and PostgreSQL versions.
describe_root() {
  local postgres
  # shellcheck disable=SC2016 # dpkg-query's own ${Version} field
  postgres=$(chroot "$1" dpkg-query -W -f='${Version}' postgresql-17)
  echo "$(chroot "$1" patroni --version), etcd $(chroot "$1" etcd --version | awk 'NR == 1 { print $3 }'), PostgreSQL ${postgres}"
}

# Debian 13's Patroni 4.0.7 misreads two etcd errors that an etcd leader change
# returns (the root rollover restarts every etcd member): a streaming error's
# JSON carries "code" where 4.0.7 looks for "grpc_code", and a lease
# keepalive that reaches the stepping-down leader gets "not a primary
# lessor" with code Unknown. Either ends as "failed to update leader lock" and
# the primary demotes itself, failsafe_mode notwithstanding (patroni/patroni
# #3572, #3407). Patroni 4.1.3 handles both as an unavailable member and
# retries another (PRs #3562, #3595), and the stack installs Patroni from PGDG
# by default; the rig cannot reach PGDG, so its root gets the same two
# corrections. Idempotent: a corrected file is left as it is.
correct_patroni_etcd_errors() {
  local module=$1/usr/lib/python3/dist-packages/patroni/dcs/etcd3.py
  python3 - "$module" <<'PY'
import sys
path = sys.argv[1]
source = open(path).read()
marker = "# pem-ha rig: etcd leader-change errors read as Unavailable"
if marker in source:
    sys.exit(0)
corrections = [
    ("code: Optional[int] = data_error['grpc_code']",
     "code: Optional[int] = data_error.get('code') or data_error['grpc_code']"),
    ("    err = errStringToClientError.get(error) or errCodeToClientError.get(code) or Unknown\n",
     f"    {marker}\n"
     "    if code == GRPCCode.Unknown and error == 'not a primary lessor':\n"
     "        code = GRPCCode.Unavailable\n"
     "    err = errStringToClientError.get(error) or errCodeToClientError.get(code) or Unknown\n"),
]
for old, new in corrections:
    if source.count(old) != 1:
        sys.exit(f"rig/build-root.sh: {path} is not the Patroni 4.0.7 this correction is for (no single {old.strip()!r})")
    source = source.replace(old, new)
open(path, "w").write(source)
print(f"rig root: corrected Patroni's etcd error handling in {path}")
PY
  rm -f "$1"/usr/lib/python3/dist-packages/patroni/dcs/__pycache__/etcd3.*.pyc
}

if [[ -f $root/.pem-ha-root && $(cat "$root/.pem-ha-root") == "$recipe" ]]; then
  correct_patroni_etcd_errors "$root"
  echo "rig root: ${root} is up to date ($(describe_root "$root"))"
  exit 0
fi
command -v debootstrap >/dev/null || {
  echo "rig/build-root.sh: debootstrap is missing (rig/setup.sh installs it)" >&2
  exit 1
}

mkdir -p "$roots"
build=$(mktemp -d "${root}.build.XXXXXX")
# shellcheck disable=SC2064 # the directory is known now
trap "rm -rf '$build'" EXIT
started=$SECONDS
echo "rig root: debootstrap ${suite} from ${mirror} into ${build} (a few minutes)"
debootstrap --variant=minbase --include="$(
  IFS=,
  echo "${packages[*]}"
)" "$suite" "$build" "$mirror" >"$build.log" 2>&1 || {
  tail -n 30 "$build.log" >&2
  echo "rig/build-root.sh: debootstrap failed (full log: ${build}.log)" >&2
  exit 1
}
rm -f "$build.log"

echo "rig root: dropping the package's default cluster; Patroni creates its own"
conf=$build/etc/postgresql-common/createcluster.conf
sed -i -E 's/^[#[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' "$conf"
grep -Eq '^create_main_cluster = false' "$conf" || echo 'create_main_cluster = false' >>"$conf"
if [[ -d $build/etc/postgresql/17/main ]]; then
  chroot "$build" pg_dropcluster 17 main
fi

echo "rig root: removing apt sources and downloaded packages (nodes have no route out)"
rm -f "$build/etc/apt/sources.list" "$build"/etc/apt/sources.list.d/*
rm -rf "$build"/var/cache/apt/archives/*.deb "$build"/var/lib/apt/lists/*
correct_patroni_etcd_errors "$build"
# Debian's apache2 unit is Type=forking without a PIDFile (systemd guesses the
# main process); the rig's systemctl stand-in needs to be told.
install -d "$build/etc/systemd/system/apache2.service.d"
printf '[Service]\nPIDFile=/run/apache2/apache2.pid\n' >"$build/etc/systemd/system/apache2.service.d/pem-ha-rig.conf"
# The systemctl stand-in is bind-mounted here by each node's init.
touch "$build/usr/bin/systemctl"
printf '%s' "$recipe" >"$build/.pem-ha-root"

rm -rf "${root}.old"
if [[ -e $root ]]; then mv "$root" "${root}.old"; fi
mv "$build" "$root"
rm -rf "${root}.old"
trap - EXIT
echo "rig root: built ${root} in $((SECONDS - started)) s ($(describe_root "$root"))"
