#!/bin/bash
# Installs what the local cluster rig runs on a Debian 12 machine (as root):
# - the Debian 13 node root (rig/build-root.sh): PostgreSQL 17, Patroni 4 and
#   etcd 3.5, what every rig suite and `npm run local` run by default;
# - on the host, for the Debian 12 upgrade suite (whose nodes see the host's
#   files): Debian 12's PostgreSQL 15 at the OLDEST minor Debian serves, so the
#   cluster starts there, Patroni and etcd, and a local apt repository with
#   that minor and a newer one for upgrade runs on the nodes (no route out);
# - HAProxy, shellcheck and the tools the tests use.
# Idempotent: a second run installs and builds nothing.
# Usage: setup.sh [--if-root]   (--if-root: as another user, say so and do nothing)
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  if [[ ${1:-} == --if-root ]]; then
    echo "rig setup: not root, so nothing installed; the local cluster suites will be skipped"
    exit 0
  fi
  echo "rig/setup.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive

# Shared by every rig, so outside the per-rig state (/var/lib/pem-ha-rig/NAME);
# rig/apt.ts reads the same path.
repo=/var/cache/pem-ha-rig/apt
# The packages of PostgreSQL 15 a minor upgrade changes (one source package);
# others of that source installed here (libpq-dev) join them below, so neither
# the host's pin nor a node's upgrade has to remove them.
pg_packages=(postgresql-15 postgresql-client-15 libpq5)
packages=(postgresql-common postgresql-15 postgresql-client-15 libpq5 patroni etcd-server
  etcd-client haproxy shellcheck iproute2 util-linux e2fsprogs openssl curl jq procps python3
  python3-boto3 python3-yaml ca-certificates dpkg-dev debootstrap nftables pgbackrest)

installed_version() {
  if dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; then
    dpkg-query -W -f='${Version}' "$1"
  fi
}

updated=false
update_lists() {
  if [[ $updated == false ]]; then
    echo "rig setup: apt-get update"
    apt-get -q update
    updated=true
  fi
}

# Prints its arguments oldest first, in Debian's version order.
sort_versions() {
  local sorted=() version i
  for version in "$@"; do
    sorted+=("$version")
    i=$((${#sorted[@]} - 1))
    while ((i > 0)) && dpkg --compare-versions "${sorted[i - 1]}" gt "$version"; do
      sorted[i]=${sorted[i - 1]}
      sorted[i - 1]=$version
      i=$((i - 1))
    done
  done
  ((${#sorted[@]} == 0)) || printf '%s\n' "${sorted[@]}"
}

# The versions Debian serves for all of pg_packages (apt-cache madison), oldest first.
served_versions() {
  local package
  local -a common
  mapfile -t common < <(
    for package in "${pg_packages[@]}"; do
      apt-cache madison "$package" | awk -F'|' '{ gsub(/[[:space:]]/, "", $2); print $2 }' | sort -u
    done | sort | uniq -c | awk -v n="${#pg_packages[@]}" '$1 == n { print $2 }'
  )
  sort_versions "${common[@]}"
}

# Sets old, new and new_source from what Debian serves: its oldest and newest
# minor, or (if it serves one) that one and a re-versioned copy of it.
choose_versions() {
  local -a served
  mapfile -t served < <(served_versions)
  if ((${#served[@]} == 0)); then
    update_lists
    mapfile -t served < <(served_versions)
  fi
  if ((${#served[@]} == 0)); then
    echo "rig setup: apt-cache madison serves no common version of ${pg_packages[*]}" >&2
    exit 1
  fi
  old=${served[0]}
  if ((${#served[@]} > 1)); then
    new=${served[-1]}
    new_source=debian
  else
    new=$old+pemha1
    new_source=rebuilt
  fi
}

versions_file() {
  cat <<EOF
# PostgreSQL 15 versions of the pem-ha rig's local apt repository (written by rig/setup.sh).
# OLD is installed on the host, so rig nodes start there; NEW is the upgrade target.
# NEW_SOURCE: debian (Debian serves both) or rebuilt (OLD's packages re-versioned).
OLD=$old
NEW=$new
NEW_SOURCE=$new_source
PACKAGES=$(IFS=,; echo "${pg_packages[*]}")
EOF
}

# True if the repository holds exactly pg_packages at old and new, with every file.
repo_is_current() {
  local expected actual filename package
  [[ -f $repo/versions.env && -f $repo/Packages && -f $repo/Release ]] || return 1
  [[ $(cat "$repo/versions.env") == "$(versions_file)" ]] || return 1
  expected=$(for package in "${pg_packages[@]}"; do printf '%s=%s\n' "$package" "$old" "$package" "$new"; done | sort)
  actual=$(awk '/^Package:/ { p = $2 } /^Version:/ { print p "=" $2 }' "$repo/Packages" | sort)
  [[ $expected == "$actual" ]] || return 1
  while read -r filename; do
    [[ -f $repo/$filename ]] || return 1
  done < <(awk '/^Filename:/ { print $2 }' "$repo/Packages")
}

# Copies the debs of version $old in $1 as version $new (the rebuilt fallback).
reversion_debs() {
  local dir=$1 deb tree package arch old_re
  # Debian versions hold [A-Za-z0-9.+~:-]; of these only . and + are special in a regex.
  old_re=$(printf '%s' "$old" | sed -E 's/[.+]/\\&/g')
  for deb in "$dir"/*.deb; do
    tree=$dir/tree
    rm -rf "$tree"
    dpkg-deb -R "$deb" "$tree"
    # The version (the source's stays), and any exact pin between packages of this source.
    sed -i -E -e "s/^Version: .*/Version: $new/" -e "s/^Source: ([^ ]+)\$/Source: \\1 ($old)/" \
      -e "s/\(= $old_re\)/(= $new)/g" "$tree/DEBIAN/control"
    package=$(dpkg-deb -f "$deb" Package)
    arch=$(dpkg-deb -f "$deb" Architecture)
    dpkg-deb -Zgzip -b "$tree" "$dir/${package}_${new#*:}_${arch}.deb" >/dev/null
    rm -rf "$tree"
  done
}

build_repo() {
  local build package index started=$SECONDS
  local -a wanted=()
  echo "rig setup: building the local apt repository ${repo} (PostgreSQL ${old} and ${new})"
  mkdir -p "$(dirname "$repo")"
  build=$(mktemp -d "${repo}.build.XXXXXX")
  # shellcheck disable=SC2064 # the directory is known now
  trap "rm -rf '$build'" EXIT
  # apt downloads as _apt where it can write.
  chmod 0755 "$build"
  if id _apt >/dev/null 2>&1; then chown _apt "$build"; fi
  for package in "${pg_packages[@]}"; do
    wanted+=("$package=$old")
    [[ $new_source == rebuilt ]] || wanted+=("$package=$new")
  done
  (cd "$build" && apt-get -q download "${wanted[@]}")
  chown -R root:root "$build"
  if [[ $new_source == rebuilt ]]; then
    echo "rig setup: Debian serves one PostgreSQL 15 minor; re-versioning it as ${new}"
    reversion_debs "$build"
  fi
  (cd "$build" && dpkg-scanpackages --multiversion . >Packages 2>/dev/null)
  gzip -9nkf "$build/Packages"
  # A Release file tells apt which indexes exist (no probing for other compressions).
  {
    echo "Date: $(LC_ALL=C date -u -R)"
    echo "SHA256:"
    for index in Packages Packages.gz; do
      printf ' %s %s %s\n' "$(sha256sum "$build/$index" | cut -d' ' -f1)" \
        "$(stat -c %s "$build/$index")" "$index"
    done
  } >"$build/Release"
  versions_file >"$build/versions.env"
  chmod -R a+rX "$build"
  rm -rf "${repo}.old"
  if [[ -e $repo ]]; then mv "$repo" "${repo}.old"; fi
  mv "$build" "$repo"
  rm -rf "${repo}.old"
  trap - EXIT
  echo "rig setup: built ${repo} in $((SECONDS - started)) s"
}

missing=()
for package in "${packages[@]}"; do
  [[ -n $(installed_version "$package") ]] || missing+=("$package")
done
if ((${#missing[@]} > 0)); then
  update_lists
fi
if [[ -z $(installed_version postgresql-common) ]]; then
  apt-get -q install -y --no-install-recommends postgresql-common
fi
# Debian creates and starts a 15/main cluster on install unless told not to
# in the main createcluster.conf (a drop-in is not read) before postgresql-15.
conf=/etc/postgresql-common/createcluster.conf
if ! grep -Eq '^create_main_cluster = false' "$conf"; then
  echo "rig setup: disabling the automatic main cluster in ${conf}"
  sed -i -E 's/^[#[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' "$conf"
  grep -Eq '^create_main_cluster = false' "$conf" || echo 'create_main_cluster = false' >>"$conf"
fi

# Other installed packages built from postgresql-15's source (e.g. libpq-dev).
while read -r package source; do
  if [[ $source == postgresql-15 && " ${pg_packages[*]} " != *" $package "* ]]; then
    pg_packages+=("$package")
  fi
done < <(dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${source:Package}\n' | awk '$1 == "ii" { print $2, $3 }')

choose_versions
if ! repo_is_current && [[ $updated == false ]]; then
  # Fresh lists before downloading (they may also show a newer minor).
  update_lists
  choose_versions
fi

# Everything missing, with PostgreSQL pinned at the oldest minor (downgraded if newer).
install=()
for package in "${missing[@]}"; do
  [[ " ${pg_packages[*]} " == *" $package "* ]] || install+=("$package")
done
for package in "${pg_packages[@]}"; do
  [[ $(installed_version "$package") == "$old" ]] || install+=("$package=$old")
done
if ((${#install[@]} == 0)); then
  echo "rig setup: every package is installed already (PostgreSQL ${old}, the oldest minor Debian serves)"
else
  echo "rig setup: installing ${install[*]}"
  apt-get -q install -y --no-install-recommends --allow-downgrades "${install[@]}"
fi

if repo_is_current; then
  echo "rig setup: the local apt repository ${repo} is up to date; nothing to build"
else
  build_repo
fi

# A cluster made before the setting above (or by an image) would hold 5432.
if pg_lsclusters -h 2>/dev/null | awk '{print $1, $2}' | grep -qx '15 main'; then
  echo "rig setup: dropping the package's default 15/main cluster"
  pg_dropcluster --stop 15 main
fi
for binary in /usr/bin/patroni /usr/bin/etcd /usr/sbin/haproxy /usr/lib/postgresql/15/bin/postgres; do
  [[ -x $binary ]] || { echo "rig setup: ${binary} is missing after the install" >&2; exit 1; }
done
echo "rig setup: Debian 12 host ready ($(patroni --version), $(etcd --version | head -n 1), PostgreSQL $(/usr/lib/postgresql/15/bin/postgres --version | awk '{print $3}'))"
echo "rig setup: ${repo} offers ${pg_packages[*]} at ${old} (installed here) and ${new} (${new_source}); versions in ${repo}/versions.env"
bash "$(dirname "$0")/build-root.sh"
