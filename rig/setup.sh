#!/bin/bash
# Installs what the local cluster rig runs on a Debian 12 machine (as root):
# Debian's PostgreSQL 15, Patroni, etcd and HAProxy, plus the tools the node
# documents use. Idempotent: a second run installs nothing.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "rig/setup.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive

packages=(postgresql-common postgresql-15 postgresql-client-15 patroni etcd-server etcd-client
  haproxy shellcheck iproute2 util-linux e2fsprogs openssl curl jq procps python3 python3-boto3
  python3-yaml ca-certificates)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$package")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "rig setup: every package is installed already"
else
  echo "rig setup: installing ${missing[*]}"
  apt-get -q update
  # Debian creates and starts a 15/main cluster on install unless told not to
  # in the main createcluster.conf (a drop-in is not read) before postgresql-15.
  apt-get -q install -y --no-install-recommends postgresql-common
  conf=/etc/postgresql-common/createcluster.conf
  if ! grep -Eq '^create_main_cluster = false' "$conf"; then
    echo "rig setup: disabling the automatic main cluster in ${conf}"
    sed -i -E 's/^[#[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' "$conf"
    grep -Eq '^create_main_cluster = false' "$conf" || echo 'create_main_cluster = false' >>"$conf"
  fi
  apt-get -q install -y --no-install-recommends "${missing[@]}"
fi

# A cluster made before the setting above (or by an image) would hold 5432.
if pg_lsclusters -h 2>/dev/null | awk '{print $1, $2}' | grep -qx '15 main'; then
  echo "rig setup: dropping the package's default 15/main cluster"
  pg_dropcluster --stop 15 main
fi
for binary in /usr/bin/patroni /usr/bin/etcd /usr/sbin/haproxy /usr/lib/postgresql/15/bin/postgres; do
  [[ -x $binary ]] || { echo "rig setup: ${binary} is missing after the install" >&2; exit 1; }
done
echo "rig setup: ready ($(patroni --version), $(etcd --version | head -n 1), PostgreSQL $(/usr/lib/postgresql/15/bin/postgres --version | awk '{print $3}'))"
