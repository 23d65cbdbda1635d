# upgrade: one step of the rolling upgrade on this node.
# Parameters: ACTION (check|drain|install|restart|verify|undrain|clear-drain), COMPONENT
# (postgresql|patroni|etcd|os|pem, or settings: no package, a restart where
# Patroni reports pending_restart), VERSION (an exact package version, or latest
# for check), TIER, MEMBER_NAME, MEMBER_ADDRESS, POSTGRES_MAJOR,
# WAIT_SECONDS. check, restart and verify end with key=value lines the
# runbook reads.

TLS=/etc/pem-ha/tls/current
PATRONI_CONFIG=/etc/patroni/patroni.yml
# What the PEM documents record of the edb-pem version they configured (pem-lib.sh).
PEM_MARKERS=(/var/lib/pem-ha/pem-backend-configured /var/lib/pem-ha/pem-web-configured)
PEM_AGENT=/usr/edb/pem/agent/bin/pemagent
PEM_WSGI=/usr/edb/pem/web/pem.wsgi
# The ALB target group's health check path (infra/constructs/web-tier.ts).
PEM_HEALTH_PATH=/pem/login

# The packages this component means on this tier (none: nothing to do here).
case "${COMPONENT}:${TIER}" in
  postgresql:backend) packages=("postgresql-${POSTGRES_MAJOR}" "postgresql-client-${POSTGRES_MAJOR}") ;;
  patroni:backend) packages=(patroni) ;;
  etcd:etcd) packages=(etcd-server etcd-client) ;;
  pem:backend | pem:web) packages=(edb-pem) ;;
  *) packages=() ;;
esac
case "${COMPONENT}:${TIER}" in
  os:* | settings:backend) ;;
  *)
    [[ ${#packages[@]} -gt 0 ]] || {
      log "component ${COMPONENT} has nothing on a ${TIER} node; nothing to do"
      echo "at_target=true"
      exit 0
    }
    ;;
esac
[[ $COMPONENT != os && $COMPONENT != settings || $VERSION == latest ]] ||
  die "Version must be latest for the ${COMPONENT} component; got ${VERSION}"

installed_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }
# 1:15.20-0+deb12u1 -> 15.20: what the running programs report of themselves.
upstream() { sed -E 's/^[0-9]+://; s/-[^-]*$//' <<<"$1"; }
rest() { curl -fsS --max-time 5 --cacert "$TLS/ca.crt" "https://${MEMBER_ADDRESS}:8008/$1"; }
rest_status() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$TLS/ca.crt" \
    "https://${MEMBER_ADDRESS}:8008/$1" || true
}
etcd_ctl() { etcd_at "https://${MEMBER_ADDRESS}:2379" "$@"; }
# True when a process runs an executable that a package upgrade replaced.
stale_exe() { [[ $(readlink "/proc/$1/exe" 2>/dev/null) == *'(deleted)' ]]; }
# True when process PID started before FILE was last replaced (a package
# upgrade renames files into place: their ctime is the install's).
started_before() {
  local pid=$1 file=$2 elapsed
  [[ -n $pid && -e $file ]] || return 1
  elapsed=$(ps -o etimes= -p "$pid" | tr -d ' ')
  [[ -n $elapsed ]] && (($(date +%s) - elapsed < $(stat -c %Z "$file")))
}
# The edb-pem version the PEM document last configured this node for.
pem_configured_version() {
  local marker
  for marker in "${PEM_MARKERS[@]}"; do
    if [[ -f $marker ]]; then
      sed -n 's/.* edb-pem=\([^ ]*\).*/\1/p' "$marker"
      return 0
    fi
  done
}
# A PEM document's marker from before markers named the version says which
# edb-pem PEM was configured for only while that is still installed: stamp it
# before the packages change, so the document knows to configure again.
stamp_pem_markers() {
  local marker
  for marker in "${PEM_MARKERS[@]}"; do
    if [[ -f $marker ]] && ! grep -q ' edb-pem=' "$marker"; then
      sed -i "1s/\$/ edb-pem=$(installed_version edb-pem)/" "$marker"
      log "${marker} now records edb-pem $(installed_version edb-pem), configured before this upgrade"
    fi
  done
}

postmaster_pid() {
  local data_dir
  data_dir=$(rest patroni | jq -r '.data_dir // empty' 2>/dev/null || true)
  [[ -n $data_dir ]] || data_dir=$(/usr/bin/python3 -c \
    'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["postgresql"]["data_dir"])' "$PATRONI_CONFIG")
  head -n 1 "${data_dir}/postmaster.pid" 2>/dev/null || true
}

# What the node runs now, as key=value lines: the version a running program
# reports and whether its executable was replaced underneath it.
running_state() {
  local pid version=unknown stale=false
  case "${COMPONENT}:${TIER}" in
    postgresql:backend)
      version=$(local_psql -At -d postgres -c 'SHOW server_version' | awk '{print $1}')
      pid=$(postmaster_pid)
      [[ -n $pid ]] && stale_exe "$pid" && stale=true
      ;;
    patroni:backend) version=$(rest patroni | jq -r '.patroni.version') ;;
    etcd:etcd)
      version=$(etcd_ctl endpoint status -w json | jq -r '.[0].Status.version')
      pid=$(pgrep -xo etcd || true)
      [[ -n $pid ]] && stale_exe "$pid" && stale=true
      ;;
    os:*)
      for pid in $(pgrep -x 'postgres|etcd|patroni' || true); do
        stale_exe "$pid" && stale=true
      done
      ;;
    pem:*)
      # PEM's configuration step, not a process, says which release serves:
      # the document records the version it configured.
      version=$(pem_configured_version)
      version=$(upstream "${version:-unknown}")
      started_before "$(pgrep -o -f "$PEM_AGENT" || true)" "$PEM_AGENT" && stale=true
      if [[ $TIER == web ]]; then
        started_before "$(pgrep -o -x apache2 || true)" "$PEM_WSGI" && stale=true
      fi
      ;;
    settings:backend) echo "pending_restart=$(pending_restart)" ;;
  esac
  echo "running=${version}"
  echo "running_stale=${stale}"
}

# Whether Patroni says PostgreSQL runs with settings that wait for a restart.
pending_restart() { rest patroni | jq -r '.pending_restart // false'; }

drained() {
  [[ -f $PATRONI_CONFIG ]] || { echo false; return 0; }
  /usr/bin/python3 -c 'import sys, yaml
print(str(bool((yaml.safe_load(open(sys.argv[1])).get("tags") or {}).get("noloadbalance"))).lower())' \
    "$PATRONI_CONFIG"
}

# set_drain_tags true|false: while `noloadbalance` is set Patroni's /replica
# answers 503, so the NLB's read health check drains the node without
# deregistering it; while `nosync` is set Patroni moves the synchronous standby
# role to another replica, so restarting this one never holds up commits.
set_drain_tags() {
  local content
  content=$(/usr/bin/python3 - "$PATRONI_CONFIG" "$1" <<'PY'
import sys, yaml
path, value = sys.argv[1], sys.argv[2] == "true"
text = open(path).read()
config = yaml.safe_load(text)
tags = config.setdefault("tags", {})
tags["noloadbalance"] = tags["nosync"] = value
print(text.splitlines()[0] if text.startswith("#") else "# pem-ha")
print(yaml.safe_dump(config, sort_keys=False, default_flow_style=False), end="")
PY
  )
  install_file "$PATRONI_CONFIG" 0600 postgres:postgres <<<"$content"
  if [[ " ${CHANGED_FILES[*]} " != *" ${PATRONI_CONFIG} "* ]]; then
    log "noloadbalance=$1 nosync=$1 already in ${PATRONI_CONFIG}"
  elif systemctl is-active --quiet patroni; then
    log "noloadbalance=$1 nosync=$1 in ${PATRONI_CONFIG}: reloading Patroni"
    systemctl reload patroni
  else
    log "noloadbalance=$1 nosync=$1 in ${PATRONI_CONFIG}: Patroni is not running and reads them when it starts"
  fi
}

not_sync_standby() {
  rest cluster | jq -e --arg name "$MEMBER_NAME" 'all(.members[]; .name != $name or .role != "sync_standby")'
}

replica_endpoint_is() { [[ $(rest_status replica) == "$1" ]]; }

target_version() {
  local package=${packages[0]} available
  if [[ $VERSION == latest ]]; then
    apt-cache policy "$package" | awk '/Candidate:/ {print $2}'
    return 0
  fi
  available=$(apt-cache madison "$package" | awk -F'|' '{gsub(/ /, "", $2); print $2}')
  grep -qxF "$VERSION" <<<"$available" ||
    die "version ${VERSION} of ${package} is not installable on ${MEMBER_NAME}; the configured repositories offer: $(tr '\n' ' ' <<<"$available")"
  echo "$VERSION"
}

refresh_index() {
  log "refreshing the package index"
  apt-get -o DPkg::Lock::Timeout=600 -q update >&2 || die "apt-get update failed on ${MEMBER_NAME}"
}

case "$ACTION" in
  check)
    [[ $COMPONENT == settings ]] || refresh_index
    if [[ $COMPONENT == settings ]]; then
      echo "target=latest"
    elif [[ $COMPONENT == os ]]; then
      upgradable=$(apt-get -s -o Debug::NoLocking=1 upgrade | grep -c '^Inst ' || true)
      echo "target=latest"
      echo "upgradable=${upgradable}"
    else
      target=$(target_version)
      [[ -n $target && $target != '(none)' ]] || die "no installable version of ${packages[0]} on ${MEMBER_NAME}"
      echo "target=${target}"
      echo "installed=$(installed_version "${packages[0]}")"
    fi
    if [[ $TIER == backend ]]; then
      role=$(rest patroni | jq -r '.role')
      echo "role=${role}"
      echo "drained=$(drained)"
      if [[ $role == master || $role == primary ]]; then
        oldest=$(local_psql -At -d postgres -c "SELECT COALESCE(MAX(EXTRACT(EPOCH FROM now() - xact_start))::bigint, 0) FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
        echo "oldest_transaction_seconds=${oldest}"
      fi
    fi
    if [[ $TIER == etcd ]]; then
      etcd_ctl endpoint health --cluster >&2 || die "etcd is not healthy on every member (seen from ${MEMBER_NAME})"
      echo "etcd_healthy=true"
    fi
    running_state
    ;;
  drain)
    [[ $TIER == backend ]] || die "drain applies to backends; ${MEMBER_NAME} is ${TIER}"
    set_drain_tags true
    log "waiting (up to ${WAIT_SECONDS} s) until ${MEMBER_NAME}'s /replica refuses reads"
    wait_until "$WAIT_SECONDS" "/replica to answer 503" replica_endpoint_is 503
    log "waiting (up to ${WAIT_SECONDS} s) until ${MEMBER_NAME} is not the synchronous standby"
    wait_until "$WAIT_SECONDS" "Patroni to move the synchronous standby role" not_sync_standby
    log "${MEMBER_NAME} is out of the read endpoint"
    ;;
  undrain)
    [[ $TIER == backend ]] || die "undrain applies to backends; ${MEMBER_NAME} is ${TIER}"
    set_drain_tags false
    log "waiting (up to ${WAIT_SECONDS} s) until ${MEMBER_NAME}'s /replica serves reads again"
    wait_until "$WAIT_SECONDS" "/replica to answer 200" replica_endpoint_is 200
    log "${MEMBER_NAME} is back in the read endpoint"
    ;;
  clear-drain)
    # After a halted run: the tags go, without waiting for reads (the node may still be catching up).
    [[ $TIER == backend ]] || die "clear-drain applies to backends; ${MEMBER_NAME} is ${TIER}"
    set_drain_tags false
    ;;
  install)
    if [[ $COMPONENT == settings ]]; then
      log "settings: nothing to install on ${MEMBER_NAME}"
      exit 0
    fi
    [[ $VERSION != latest || $COMPONENT == os ]] || die "install needs an exact Version; got latest"
    [[ $COMPONENT != pem ]] || stamp_pem_markers
    # Package scripts must start, stop or restart nothing: the runbook restarts
    # each service itself, one node at a time.
    policy=/usr/sbin/policy-rc.d
    if [[ ! -e $policy ]]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy"
      chmod 0755 "$policy"
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt_options=(-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef -q -y --no-install-recommends)
    if [[ $COMPONENT == os ]]; then
      refresh_index
      log "upgrading every package that is not held"
      apt-get "${apt_options[@]}" upgrade
    else
      pinned=()
      for package in "${packages[@]}"; do pinned+=("${package}=${VERSION}"); done
      if [[ $(installed_version "${packages[0]}") == "$VERSION" ]] && ! dpkg --audit | grep -q .; then
        log "${packages[*]} already at ${VERSION}"
      else
        apt-cache madison "${packages[0]}" | grep -qF "| ${VERSION} |" || refresh_index
        apt-mark unhold "${packages[@]}" >/dev/null
        log "installing ${pinned[*]} (services are not restarted by the package)"
        apt-get "${apt_options[@]}" install "${pinned[@]}"
      fi
      apt-mark hold "${packages[@]}" >/dev/null
      log "held ${packages[*]} at ${VERSION}"
    fi
    ;;
  restart)
    state=$(running_state)
    running=$(sed -n 's/^running=//p' <<<"$state")
    stale=$(sed -n 's/^running_stale=//p' <<<"$state")
    if [[ $COMPONENT == settings ]]; then
      if [[ $(pending_restart) == true ]]; then
        restart_needed=true
      else
        restart_needed=false
        log "${MEMBER_NAME} runs with every setting applied; no restart"
      fi
    elif [[ $COMPONENT != os && $stale == false && $running == "$(upstream "$(installed_version "${packages[0]}")")" ]]; then
      restart_needed=false
      log "${MEMBER_NAME} already runs the installed ${packages[0]} (${running}); no restart"
    else
      restart_needed=true
    fi
    if [[ $restart_needed == true ]]; then
      case "${COMPONENT}:${TIER}" in
        postgresql:backend | settings:backend)
          role=$(rest patroni | jq -r '.role')
          [[ $role == replica || $role == sync_standby ]] ||
            die "${MEMBER_NAME} is the ${role}; the runbook restarts PostgreSQL on replicas only"
          log "restarting PostgreSQL through Patroni (POST /restart, role replica)"
          user=$(/usr/bin/python3 -c 'import sys, yaml; a = yaml.safe_load(open(sys.argv[1]))["restapi"]["authentication"]; print(a["username"] + ":" + a["password"])' "$PATRONI_CONFIG")
          # The credentials go to curl on stdin, never on a command line.
          printf 'user = "%s"\n' "$user" | curl -fsS --max-time 120 --cacert "$TLS/ca.crt" -K - \
            -X POST -H 'Content-Type: application/json' -d '{"role": "replica"}' \
            "https://${MEMBER_ADDRESS}:8008/restart" >&2 || die "Patroni refused or failed the restart of ${MEMBER_NAME}"
          unset user
          ;;
        patroni:backend | os:backend)
          log "restarting Patroni (PostgreSQL stops and starts with it)"
          systemctl restart patroni
          ;;
        etcd:etcd | os:etcd)
          log "restarting etcd member ${MEMBER_NAME} (it hands leadership over on SIGTERM)"
          systemctl restart etcd
          ;;
        *) log "nothing to restart on a ${TIER} node" ;;
      esac
    fi
    if [[ $TIER == backend ]]; then
      member_running() { rest patroni | jq -e '.state == "running"'; }
      wait_until "$WAIT_SECONDS" "member ${MEMBER_NAME} to run again" member_running
    elif [[ $TIER == etcd ]]; then
      has_leader() { etcd_ctl endpoint status --cluster -w json | jq -e 'all(.[]; .Status.leader != 0)'; }
      wait_until "$WAIT_SECONDS" "every etcd member to be healthy" etcd_ctl endpoint health --cluster
      wait_until "$WAIT_SECONDS" "every etcd member to see a leader" has_leader
    fi
    log "${MEMBER_NAME} is running"
    ;;
  verify)
    state=$(running_state)
    echo "$state"
    running=$(sed -n 's/^running=//p' <<<"$state")
    [[ $state != *running_stale=true* ]] ||
      die "${MEMBER_NAME} still runs a replaced executable (a restart did not take)"
    if [[ $COMPONENT == pem ]]; then
      service_running pemagent || die "pemagent is not running on ${MEMBER_NAME}"
      if [[ $TIER == web ]]; then
        # The ALB's own check, from here: only whether Apache answers matters.
        status=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 10 "https://127.0.0.1:8443${PEM_HEALTH_PATH}" || true)
        [[ $status == 200 ]] || die "PEM's web application on ${MEMBER_NAME} answers ${PEM_HEALTH_PATH} with ${status:-nothing}, not 200"
      fi
    fi
    if [[ $COMPONENT == settings ]]; then
      [[ $state != *pending_restart=true* ]] ||
        die "${MEMBER_NAME} still reports pending_restart (the restart did not apply its settings)"
    elif [[ $COMPONENT != os ]]; then
      installed=$(installed_version "${packages[0]}")
      [[ $installed == "$VERSION" ]] || die "${packages[0]} on ${MEMBER_NAME} is ${installed}, not ${VERSION}"
      [[ $running == "$(upstream "$installed")" ]] ||
        die "${MEMBER_NAME} runs ${running}, but ${packages[0]} ${installed} is installed"
    fi
    echo "at_target=true"
    log "${MEMBER_NAME} runs ${COMPONENT} ${running} from the installed package"
    ;;
  *) die "Action must be check, drain, install, restart, verify, undrain or clear-drain; got ${ACTION}" ;;
esac
