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
# (Moto is the S3 stand-in; debootstrap does not resolve the virtual package
# python3-cryptography needs, so python3-cffi-backend is named).
packages=(postgresql-17 postgresql-client-17 postgresql-common patroni python3-psycopg2
  etcd-server etcd-client haproxy pgbackrest python3 python3-boto3 python3-yaml
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

if [[ -f $root/.pem-ha-root && $(cat "$root/.pem-ha-root") == "$recipe" ]]; then
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
# The systemctl stand-in is bind-mounted here by each node's init.
touch "$build/usr/bin/systemctl"
printf '%s' "$recipe" >"$build/.pem-ha-root"

rm -rf "${root}.old"
if [[ -e $root ]]; then mv "$root" "${root}.old"; fi
mv "$build" "$root"
rm -rf "${root}.old"
trap - EXIT
echo "rig root: built ${root} in $((SECONDS - started)) s ($(describe_root "$root"))"
