# patroni: the data volume, patroni.yml, the Patroni unit, start, and wait
# until this member runs. Never removes a data directory: a node that is or
# was a member keeps its data, whatever happens on the way.
# Parameters: the patroni document's (document-specs.ts) as shell variables;
# RESTORE_TARGET is none, or with BOOTSTRAP the restore runbook's target
# (latest, time=..., lsn=... or name=...) and RESTORE_SET the backup to start from.

TLS=/etc/pem-ha/tls/current
PGHOME=/var/lib/postgresql
DATA_DIR=${PGHOME}/${POSTGRES_MAJOR}/${CLUSTER_NAME}
CONFIG=/etc/patroni/patroni.yml
# The dynamic settings this run wants in etcd (written with patroni.yml).
DYNAMIC_CONFIG=/etc/patroni/dynamic.json
# The names of the postgresqlParameters the last run set: a name dropped from
# the setting is removed from the running cluster too.
USER_PARAMETERS=/var/lib/pem-ha/postgresql-parameters.json
MEMBER_MARKER=/var/lib/pem-ha/patroni-member

for file in ca.crt postgres-server.crt postgres-server.key patroni-rest.crt patroni-rest.key \
  pgbackrest.crt pgbackrest.key etcd-client.crt etcd-client.key; do
  [[ -r $TLS/$file ]] || die "missing ${TLS}/${file}: the certificates step must run before patroni"
done

# Patroni rebuilds its REST server when its certificate changes, inside the
# HA loop, and Python's HTTP server looks the listen address up in reverse DNS
# while binding: with a slow resolver the leader misses its TTL (10 s stalls
# were measured). The node's own name and address in /etc/hosts answer at once.
# The other backends' too: pgBackRest (2.45) verifies peers by name only.
IFS=, read -r -a host_names <<<"$BACKEND_NAMES"
IFS=, read -r -a host_addresses <<<"$BACKEND_ADDRESSES"
for i in "${!host_addresses[@]}"; do
  if ! grep -Eq "^${host_addresses[i]//./\\.}[[:space:]]" /etc/hosts; then
    log "adding ${host_addresses[i]} ${host_names[i]} to /etc/hosts (no DNS in the HA loop)"
    printf '%s %s\n' "${host_addresses[i]}" "${host_names[i]}" >>/etc/hosts
  else
    log "/etc/hosts already maps ${host_addresses[i]}"
  fi
done

# On Nitro instances an EBS volume appears as an NVMe device whose id carries
# the volume id; older instance types show the attachment's device name.
find_data_device() {
  local by_id=/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${DATA_VOLUME_ID//-/}
  local candidate
  for candidate in "$by_id" /dev/sdf /dev/xvdf; do
    if [[ -b $candidate ]]; then
      readlink -f "$candidate"
      return 0
    fi
  done
  return 1
}

# A new EBS volume reads as zeros: its first and last MiB are checked.
reads_blank() {
  local device=$1 mib
  mib=$(($(blockdev --getsize64 "$device") / 1048576))
  cmp -s -n 1048576 "$device" /dev/zero &&
    dd if="$device" bs=1M skip=$((mib - 1)) count=1 status=none | cmp -s -n 1048576 - /dev/zero
}

mount_data_volume() {
  if mountpoint -q "$PGHOME"; then
    log "data volume already mounted at ${PGHOME}"
    return 0
  fi
  wait_until 300 "data volume ${DATA_VOLUME_ID} to be attached" find_data_device
  local device fs_uuid fs_type status=0
  device=$(find_data_device)
  # blkid -p reads the device itself: 0 = a file system, 2 = no signature at all;
  # anything else means it could not tell, and a volume is never formatted on a guess.
  fs_type=$(blkid -p -o value -s TYPE "$device") || status=$?
  case $status in
    0)
      [[ $fs_type == ext4 ]] || die "data volume ${DATA_VOLUME_ID} (${device}) holds a ${fs_type} file system, not ext4: not mounting it"
      log "data volume ${DATA_VOLUME_ID} (${device}) already has an ext4 file system: keeping it"
      ;;
    2)
      [[ ! -e $MEMBER_MARKER ]] || die "this node has been a member, but data volume ${DATA_VOLUME_ID} (${device}) shows no file system: not formatting it (attach the volume this node used, or replace the node)"
      reads_blank "$device" || die "data volume ${DATA_VOLUME_ID} (${device}) has no file system signature but is not blank: not formatting it (inspect it with: wipefs -n ${device})"
      log "formatting the new, blank data volume ${DATA_VOLUME_ID} (${device}) as ext4"
      mkfs.ext4 -q -L pemha-data "$device"
      ;;
    *) die "blkid could not read data volume ${DATA_VOLUME_ID} (${device}) (status ${status}): not formatting or mounting it" ;;
  esac
  fs_uuid=$(blkid -o value -s UUID "$device")
  if ! grep -q "UUID=${fs_uuid} " /etc/fstab; then
    echo "UUID=${fs_uuid} ${PGHOME} ext4 defaults,noatime,nofail 0 2" >>/etc/fstab
    log "added the data volume to /etc/fstab"
  fi
  mkdir -p "$PGHOME"
  mount "$PGHOME"
  log "mounted ${device} at ${PGHOME}"
}

# Space an operator (or a runbook) can free at once when WAL fills the volume:
# rm it, and PostgreSQL has room to start and archive again.
ensure_space_reserve() {
  local reserve=${PGHOME}/pem-ha-space-reserve free_mib
  if [[ -f $reserve ]]; then
    log "space reserve ${reserve} in place ($(du -m "$reserve" | cut -f1) MiB)"
    return 0
  fi
  free_mib=$(($(stat -f -c '%a * %S' "$PGHOME") / 1048576))
  if ((free_mib < 2 * SPACE_RESERVE_MIB)); then
    log "only ${free_mib} MiB free on ${PGHOME}: no space reserve made now; a later run makes it once there is room"
    return 0
  fi
  fallocate -l "${SPACE_RESERVE_MIB}MiB" "$reserve"
  chmod 0600 "$reserve"
  log "made a ${SPACE_RESERVE_MIB} MiB space reserve at ${reserve} (remove it to free space in an emergency)"
}

# A deploy that raised dataVolumeSizeGiB grew the EBS volume in place; ext4
# grows online to the device's new size (resize2fs does nothing when it fits).
grow_data_filesystem() {
  local device fs_mib device_mib
  device=$(findmnt -n -o SOURCE --target "$PGHOME")
  device_mib=$(($(blockdev --getsize64 "$device") / 1048576))
  fs_mib=$(($(dumpe2fs -h "$device" 2>/dev/null | awk -F: '/^Block count/ {c=$2} /^Block size/ {s=$2} END {print c * s}') / 1048576))
  if ((device_mib > fs_mib + 1)); then
    log "data volume ${device} is ${device_mib} MiB, its file system ${fs_mib} MiB: growing it online"
    resize2fs "$device" >&2
  fi
}

mount_data_volume
grow_data_filesystem
ensure_space_reserve
install -d -m 0755 -o postgres -g postgres "$PGHOME" "${PGHOME}/${POSTGRES_MAJOR}"
install -d -m 0755 -o root -g postgres /etc/patroni

if [[ -f ${DATA_DIR}/PG_VERSION ]]; then
  log "data directory ${DATA_DIR} exists (PostgreSQL $(cat "${DATA_DIR}/PG_VERSION")): it is kept as it is"
  touch "$MEMBER_MARKER"
elif [[ -e $MEMBER_MARKER ]]; then
  die "this node has been a member but ${DATA_DIR} is missing; refusing to re-create it automatically (restore the data volume, or remove ${MEMBER_MARKER} to let the node rejoin as a new replica)"
fi

write_pgbackrest_config "$DATA_DIR"

log "reading credentials with the instance role"
SUPERUSER_PASSWORD=$(fetch_secret "${SECRET_PREFIX}/patroniSuperuser" password)
REPLICATION_PASSWORD=$(fetch_secret "${SECRET_PREFIX}/patroniReplication" password)
REWIND_PASSWORD=$(fetch_secret "${SECRET_PREFIX}/patroniRewind" password)
REST_PASSWORD=$(fetch_secret "${SECRET_PREFIX}/patroniRestApi" password)
ETCD_PASSWORD=$(fetch_secret "${SECRET_PREFIX}/patroniEtcd" password)
export SUPERUSER_PASSWORD REPLICATION_PASSWORD REWIND_PASSWORD REST_PASSWORD ETCD_PASSWORD
export MEMBER_NAME MEMBER_ADDRESS BOOTSTRAP CLUSTER_NAME POSTGRES_MAJOR ETCD_HOSTS \
  BACKEND_ADDRESSES WEB_ADDRESSES TRUSTED_CIDRS CLIENT_CIDRS PEM_ENABLED TTL LOOP_WAIT RETRY_TIMEOUT \
  MAXIMUM_LAG_ON_FAILOVER SYNCHRONOUS_MODE DATA_DIR PGHOME TLS ARCHIVE_TIMEOUT_SECONDS \
  REPLICA_FROM_REPOSITORY RESTORE_TARGET RESTORE_SET MAX_WAL_SIZE_MIB MAX_SLOT_WAL_KEEP_MIB \
  DYNAMIC_CONFIG POSTGRESQL_PARAMETERS USER_PARAMETERS

render_patroni_config() {
  /usr/bin/python3 <<'PY'
import base64, copy, json, os, shlex, yaml
env = os.environ
split = lambda name: [item for item in env[name].split(",") if item]
backends, trusted, clients = split("BACKEND_ADDRESSES"), split("TRUSTED_CIDRS"), split("CLIENT_CIDRS")
webs = split("WEB_ADDRESSES")
tls = env["TLS"]
pem = env["PEM_ENABLED"] == "true"

# First match wins. The administrative roles log in from the places listed for
# them and are rejected everywhere else, before the application lines: the NLB
# hides client addresses (its own are in the trusted subnets), so a rule for a
# subnet cannot tell a web host or an application from the NLB's clients.
hba = [
    # The OS user postgres (Patroni itself, the node documents) as patroni_super.
    "local all patroni_super peer map=pemha_local",
    "local all patroni_super scram-sha-256",
    # The metric collector's OS user as pem_ha_monitor (pg_monitor, no password).
    "local postgres pem_ha_monitor peer map=pemha_monitor",
    "hostssl all patroni_super 127.0.0.1/32 scram-sha-256",
    # Patroni reads the timeline over a replication connection to itself.
    "hostssl replication patroni_rep 127.0.0.1/32 scram-sha-256",
    "hostssl all patroni_rew 127.0.0.1/32 scram-sha-256",
]
for address in backends:
    hba += [f"hostssl replication patroni_rep {address}/32 scram-sha-256",
            f"hostssl all patroni_rew {address}/32 scram-sha-256",
            f"hostssl all patroni_super {address}/32 scram-sha-256"]
if pem:
    hba += ["hostssl pem +pem_user 127.0.0.1/32 scram-sha-256",
            "hostssl postgres +pem_user 127.0.0.1/32 scram-sha-256",
            "hostssl pem +pem_agent 127.0.0.1/32 cert"]
    # pemsuper (PEM's configuration steps, the web application's own login)
    # from the backends and the web hosts only.
    for address in ["127.0.0.1"] + backends + webs:
        hba.append(f"hostssl pem,postgres pemsuper {address}/32 scram-sha-256")
hba += ["host all patroni_super,patroni_rew,patroni_rep,pem_ha_monitor,pemsuper all reject",
        "host replication all all reject"]
if pem:
    for address in [f"{a}/32" for a in backends] + trusted:
        hba += [f"hostssl pem,postgres +pem_user {address} scram-sha-256",
                f"hostssl pem +pem_admin {address} scram-sha-256",
                f"hostssl pem +pem_agent {address} cert"]
    for cidr in clients:  # monitoring agents of the monitored servers
        hba += [f"hostssl pem +pem_user {cidr} scram-sha-256",
                f"hostssl pem +pem_agent {cidr} cert"]
# Every other role: applications, through the NLB (its addresses are in the
# trusted subnets) or directly with the multi-host string.
for cidr in trusted + clients:
    hba.append(f"hostssl all all {cidr} scram-sha-256")

verify = {"sslmode": "verify-full", "sslrootcert": f"{tls}/ca.crt"}
pgbackrest = f"/usr/bin/pgbackrest --stanza={env['CLUSTER_NAME']}"
config = {
    "scope": env["CLUSTER_NAME"],
    "name": env["MEMBER_NAME"],
    "restapi": {
        # One address: Patroni 3.0's REST listen takes no list.
        "listen": f"{env['MEMBER_ADDRESS']}:8008",
        "connect_address": f"{env['MEMBER_ADDRESS']}:8008",
        "certfile": f"{tls}/patroni-rest.crt",
        "keyfile": f"{tls}/patroni-rest.key",
        "cafile": f"{tls}/ca.crt",
        "authentication": {"username": "patroni_api", "password": env["REST_PASSWORD"]},
    },
    "ctl": {"cacert": f"{tls}/ca.crt", "insecure": False},
    "etcd3": {
        "hosts": split("ETCD_HOSTS"),
        "protocol": "https",
        "cacert": f"{tls}/ca.crt",
        "cert": f"{tls}/etcd-client.crt",
        "key": f"{tls}/etcd-client.key",
        # etcd's access control (etcd-access.sh): this login reads and writes
        # the cluster's keys only; the certificate gets it through TLS.
        "username": "patroni",
        "password": env["ETCD_PASSWORD"],
    },
    "postgresql": {
        "listen": f"{env['MEMBER_ADDRESS']},127.0.0.1:5432",
        "connect_address": f"{env['MEMBER_ADDRESS']}:5432",
        "data_dir": env["DATA_DIR"],
        "bin_dir": f"/usr/lib/postgresql/{env['POSTGRES_MAJOR']}/bin",
        "pgpass": f"{env['PGHOME']}/.pgpass.patroni",
        "use_unix_socket": True,
        "authentication": {
            "superuser": {"username": "patroni_super", "password": env["SUPERUSER_PASSWORD"]},
            "replication": {"username": "patroni_rep", "password": env["REPLICATION_PASSWORD"], **verify},
            "rewind": {"username": "patroni_rew", "password": env["REWIND_PASSWORD"], **verify},
        },
        "parameters": {
            "unix_socket_directories": "/var/run/postgresql",
            "ssl": "on",
            "ssl_cert_file": f"{tls}/postgres-server.crt",
            "ssl_key_file": f"{tls}/postgres-server.key",
            "ssl_ca_file": f"{tls}/ca.crt",
            "password_encryption": "scram-sha-256",
            # Every segment reaches the repository within archive_timeout.
            "archive_mode": "on",
            "archive_command": f"{pgbackrest} archive-push %p",
            "archive_timeout": int(env["ARCHIVE_TIMEOUT_SECONDS"]),
            # Sized from the data volume: WAL between checkpoints, and the most a
            # stuck replica's slot may hold before the primary lets it go.
            "max_wal_size": f"{env['MAX_WAL_SIZE_MIB']}MB",
            "max_slot_wal_keep_size": f"{env['MAX_SLOT_WAL_KEEP_MIB']}MB",
        },
        # A replica behind what its primary keeps reads the archive. Bounded: with
        # S3 unreachable the fetch would retry for minutes and stall the
        # replica's start; a timeout (exit 124) means "not there", so it streams.
        "recovery_conf": {"restore_command": f"timeout 20 {pgbackrest} archive-get %f %p"},
        # New or wiped replicas restore from the repository and stream the
        # rest; with no backup yet, or S3 unreachable, from the primary.
        "create_replica_methods": ["pgbackrest", "basebackup"],
        "pgbackrest": {"command": env["REPLICA_FROM_REPOSITORY"], "keep_data": True, "no_params": True},
        # A clone asks the primary for an immediate checkpoint rather than waiting
        # for a spread one (up to 90% of checkpoint_timeout): redundancy back sooner.
        "basebackup": [{"checkpoint": "fast"}],
        "pg_hba": hba,
        "pg_ident": ["pemha_local postgres patroni_super",
                     "pemha_monitor pem-ha-metrics pem_ha_monitor"],
    },
    "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
    # Where the kernel offers one: a leader whose Patroni hangs is reset
    # before its key expires. Without a device Patroni runs on, and says so.
    "watchdog": {"mode": "automatic", "device": "/dev/watchdog", "safety_margin": 5},
}
# Patroni's dynamic settings (kept in etcd): they seed a new cluster, and every
# run of this document makes the running cluster match them (converge_dynamic).
dynamic = {
    "ttl": int(env["TTL"]),
    "loop_wait": int(env["LOOP_WAIT"]),
    "retry_timeout": int(env["RETRY_TIMEOUT"]),
    "maximum_lag_on_failover": int(env["MAXIMUM_LAG_ON_FAILOVER"]),
    "synchronous_mode": env["SYNCHRONOUS_MODE"] == "true",
    # With etcd lost, a leader that reaches every member keeps its role.
    "failsafe_mode": True,
    "postgresql": {
        "use_pg_rewind": True,
        "use_slots": True,
        "parameters": {
            "wal_level": "replica",
            "hot_standby": "on",
            "wal_log_hints": "on",
            "max_wal_senders": 10,
            "max_replication_slots": 10,
            "wal_keep_size": "1GB",
        },
    },
}
# The user's postgresqlParameters (checked at synth), under pem-ha's own.
user = json.loads(base64.b64decode(env["POSTGRESQL_PARAMETERS"]))
ours = dynamic["postgresql"]["parameters"]
dynamic["postgresql"]["parameters"] = {**user, **ours}
# A name the last run set and this one does not is removed (null in PATCH /config).
previous = json.load(open(env["USER_PARAMETERS"])) if os.path.exists(env["USER_PARAMETERS"]) else []
desired = copy.deepcopy(dynamic)
for name in previous:
    if name not in user and name not in ours:
        desired["postgresql"]["parameters"][name] = None
with open(env["DYNAMIC_CONFIG"], "w") as handle:
    json.dump(desired, handle, sort_keys=True)
with open(env["USER_PARAMETERS"], "w") as handle:
    json.dump(sorted(user), handle)
if env["BOOTSTRAP"] == "true":
    config["bootstrap"] = {
        "dcs": dynamic,
        "initdb": [{"encoding": "UTF8"}, "data-checksums", {"auth-host": "scram-sha-256"}],
    }
    # The restore runbook's point-in-time restore: Patroni bootstraps the new
    # cluster with pgBackRest instead of initdb. pgBackRest writes the recovery
    # settings (restore_command, the target, promote at it), which Patroni keeps.
    kind, _, value = env["RESTORE_TARGET"].partition("=")
    if kind != "none":
        restore = [*pgbackrest.split(), "--delta"]
        if kind != "latest":
            restore += [f"--type={kind}", f"--target={value}", "--target-action=promote"]
        if env["RESTORE_SET"] != "latest":
            restore.append(f"--set={env['RESTORE_SET']}")
        config["bootstrap"]["method"] = "pitr"
        config["bootstrap"]["pitr"] = {
            "command": shlex.join([*restore, "restore"]),
            "no_params": True,
            "keep_existing_recovery_conf": True,
        }
print("# Written by pem-ha's patroni document; edits are replaced on the next run.")
print(yaml.safe_dump(config, sort_keys=False, default_flow_style=False), end="")
PY
}

# softdog where the kernel has it; Patroni (as postgres) must open the device.
prepare_watchdog() {
  install -d -m 0755 /etc/modules-load.d /etc/udev/rules.d
  if [[ ! -e /dev/watchdog ]] && modinfo softdog >/dev/null 2>&1; then
    log "loading the softdog watchdog module (and at every boot)"
    echo softdog | install_file /etc/modules-load.d/pem-ha-softdog.conf 0644 root:root
    modprobe softdog
  fi
  echo 'KERNEL=="watchdog", OWNER="postgres", GROUP="postgres", MODE="0600"' |
    install_file /etc/udev/rules.d/61-pem-ha-watchdog.rules 0644 root:root
  if [[ -c /dev/watchdog ]]; then
    chown postgres:postgres /dev/watchdog
    log "watchdog /dev/watchdog ready for Patroni (mode automatic)"
  else
    log "no watchdog device on this kernel: Patroni runs without one (mode automatic)"
  fi
}
prepare_watchdog

render_patroni_config | install_file "$CONFIG" 0600 postgres:postgres
chmod 0600 "$DYNAMIC_CONFIG"
unset SUPERUSER_PASSWORD REPLICATION_PASSWORD REWIND_PASSWORD

# Our own unit: Debian's reads /etc/patroni/config.yml and silently starts
# nothing without it; the PEM configuration script expects the name `patroni`.
install_file /etc/systemd/system/patroni.service 0644 root:root <<UNIT
[Unit]
Description=Patroni (pem-ha ${CLUSTER_NAME})
After=network-online.target
Wants=network-online.target
# Never on the root disk: without the data volume mounted, Patroni does not start.
RequiresMountsFor=${PGHOME}

[Service]
Type=simple
User=postgres
Group=postgres
ExecStartPre=/bin/sh -c 'mountpoint -q ${PGHOME} || { echo "pem-ha: the data volume is not mounted at ${PGHOME}: Patroni does not start on the root disk" >&2; exit 1; }'
ExecStart=/usr/bin/patroni ${CONFIG}
ExecReload=/bin/kill -s HUP \$MAINPID
# The socket directory; systemd-tmpfiles may not have made it yet.
RuntimeDirectory=postgresql
RuntimeDirectoryMode=2775
RuntimeDirectoryPreserve=yes
# Stopping Patroni stops PostgreSQL itself: only signal Patroni.
KillMode=process
TimeoutSec=60
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
touch /etc/pem-ha/patroni.managed
systemctl daemon-reload
apply_service "$PGBACKREST_SERVER_UNIT" "$PGBACKREST_CONFIG" restart
# SIGHUP: Patroni re-reads patroni.yml and reloads PostgreSQL, never restarts it.
apply_service patroni "$CONFIG" reload

rest() { curl -fsS --max-time 5 --cacert "$TLS/ca.crt" "https://${MEMBER_ADDRESS}:8008/$1"; }
member_running() {
  if ! service_running patroni; then
    systemctl status patroni --no-pager -n 20 >&3 || true
    die "Patroni exited while starting member ${MEMBER_NAME} (status above)"
  fi
  rest patroni | jq -e '.state == "running"'
}
log "waiting (up to ${START_TIMEOUT_SECONDS} s) for this member to run"
wait_until "$START_TIMEOUT_SECONDS" "member ${MEMBER_NAME} to be running" member_running
touch "$MEMBER_MARKER"
if [[ $RESTORE_TARGET == none ]] && restore_in_progress; then
  rm -f "$RESTORE_MARKER"
  log "this member runs normally again: the restore is over here"
fi

# converge_dynamic: on the primary, PATCH /config with every dynamic setting
# that differs from this run's, then read /config back and compare: a deploy
# that changes ttl (or failsafe_mode on a cluster made before it) reaches the
# running cluster. Reload-only: Patroni applies it in its next loop.
converge_dynamic() {
  /usr/bin/python3 - <<'PY' || die "Patroni's dynamic settings could not be made to match (see above)"
import base64, json, os, ssl, sys, time, urllib.error, urllib.request
env = os.environ
url = f"https://{env['MEMBER_ADDRESS']}:8008/config"
context = ssl.create_default_context(cafile=f"{env['TLS']}/ca.crt")
auth = base64.b64encode(f"patroni_api:{env['REST_PASSWORD']}".encode()).decode()

def call(method, body=None):
    # 502/503: a cluster bootstrapped a moment ago has not published /config yet;
    # 409: another writer changed it between our read and write. Bounded retries.
    for attempt in range(30):
        request = urllib.request.Request(url, method=method, data=body and json.dumps(body).encode(),
                                         headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            if error.code not in (409, 502, 503) or attempt == 29:
                sys.exit(f"pem-ha: {method} /config answered {error.code} {error.reason}")
            time.sleep(2)

def differences(want, have, path="", quiet=False):
    found = {}
    for key, value in want.items():
        current = (have or {}).get(key) if isinstance(have, dict) else None
        if isinstance(value, dict):
            nested = differences(value, current, f"{path}{key}.", quiet)
            if nested:
                found[key] = nested
        elif str(value).lower() != str(current).lower():
            if not quiet:
                print(f"[pem-ha] dynamic setting {path}{key}: {current} -> {'(removed)' if value is None else value}")
            found[key] = value
    return found

with open(env["DYNAMIC_CONFIG"]) as handle:
    desired = json.load(handle)
patch = differences(desired, call("GET"))
if not patch:
    print("[pem-ha] Patroni's dynamic settings already match this deploy")
    sys.exit(0)
call("PATCH", patch)
# GET /config answers from Patroni's view of etcd, which takes a moment to see the PATCH.
for attempt in range(30):
    time.sleep(1)
    left = differences(desired, call("GET"), quiet=True)
    if not left:
        break
else:
    sys.exit(f"pem-ha: GET /config still differs 30 s after PATCH: {json.dumps(left)}")
print("[pem-ha] Patroni's dynamic settings now match this deploy (checked back from GET /config)")
PY
}

role=$(rest patroni | jq -r '.role')
if [[ $role == master || $role == primary ]]; then
  role=primary
  ensure_roles() {
    local_psql -q -d postgres <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'patroni_rew') THEN
    RAISE EXCEPTION 'rewind role patroni_rew is missing; Patroni creates it at bootstrap';
  END IF;
END $$;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO patroni_rew;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO patroni_rew;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO patroni_rew;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO patroni_rew;
DO $$
BEGIN
  -- The metric collector's role: reads statistics, owns nothing, no password.
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pem_ha_monitor') THEN
    CREATE ROLE pem_ha_monitor LOGIN CONNECTION LIMIT 3;
  END IF;
END $$;
GRANT pg_monitor TO pem_ha_monitor;
SQL
  }
  ensure_roles
  log "rewind grants and the monitoring role in place on the primary"
  converge_dynamic
else
  role=replica
fi
unset REST_PASSWORD
log "member ${MEMBER_NAME} is running as ${role}"
echo "role=${role}"
