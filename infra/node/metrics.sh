# metrics: the node's metric collector, a service that every INTERVAL_SECONDS
# (60) reads this node's health and sends it to CloudWatch with the instance
# role: etcd members ask etcd; backends read PostgreSQL as pem_ha_monitor
# (pg_monitor, created by the patroni document) over the local socket, and
# the data volume. A service rather than a timer: one process keeps the
# cadence, and its missing heartbeat (node or service down) is the alarm.
# Parameters: TIER, MEMBER_NAME, MEMBER_ADDRESS, CLUSTER_NAME, METRICS_NAMESPACE.

METRICS_COLLECTOR=/usr/local/lib/pem-ha/collect-metrics
METRICS_ENV=/etc/pem-ha/metrics.env
METRICS_UNIT=/etc/systemd/system/pem-ha-metrics.service

case $TIER in
  # etcd's own user reads etcd's peer key; PostgreSQL maps pem-ha-metrics to pem_ha_monitor.
  etcd) user=etcd ;;
  backend) user=pem-ha-metrics ;;
  *) die "Tier must be etcd or backend; got ${TIER}" ;;
esac
if ! id -u "$user" >/dev/null 2>&1; then
  [[ $TIER == backend ]] || die "user ${user} does not exist: the etcd document must run on this node first"
  log "creating the system user ${user} for the metric collector"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
fi
install -d -m 0755 /usr/local/lib/pem-ha
install_file "$METRICS_COLLECTOR" 0755 root:root <<'COLLECTOR'
#!/bin/bash
# pem-ha metric collector (written by pem-ha's node documents).
set -euo pipefail
: "${CLUSTER_NAME:?}" "${NODE_NAME:?}" "${NODE_ADDRESS:?}" "${TIER:?}" "${NAMESPACE:?}"
interval=${INTERVAL_SECONDS:-60}
tls=/etc/pem-ha/tls/current

say() { printf 'pem-ha-metrics: %s\n' "$*" >&2; }

# datum NAME VALUE UNIT [NODE]: one PutMetricData datum as a JSON line.
datum() {
  jq -cn --arg name "$1" --argjson value "$2" --arg unit "$3" --arg node "${4:-}" \
    '{MetricName: $name, Value: $value, Unit: $unit,
      Dimensions: ([{Name: "ClusterName", Value: env.CLUSTER_NAME}]
        + (if $node == "" then [] else [{Name: "Node", Value: $node}] end))}'
}

# As pem_ha_monitor (pg_monitor) over the local socket: the oldest open
# transaction, the oldest unfrozen XID, client connections against
# max_connections, and the WAL the oldest replication slot holds.
readonly BACKEND_SQL="
SELECT coalesce((SELECT extract(epoch FROM max(now() - xact_start))::bigint
                   FROM pg_stat_activity
                  WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()), 0),
       (SELECT max(age(datfrozenxid)) FROM pg_database),
       (SELECT round(100.0 * count(*) / current_setting('max_connections')::int, 1)
          FROM pg_stat_activity WHERE backend_type = 'client backend'),
       coalesce((SELECT max(pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery()
                                                 THEN pg_last_wal_receive_lsn()
                                                 ELSE pg_current_wal_lsn() END, restart_lsn))
                   FROM pg_replication_slots WHERE restart_lsn IS NOT NULL), 0)::bigint"

backend_readings() {
  local row oldest xid connections retained data=/var/lib/postgresql
  if row=$(psql -X -qAt -F ' ' -h /var/run/postgresql -U pem_ha_monitor -d postgres \
    -c "$BACKEND_SQL" 2>&1); then
    read -r oldest xid connections retained <<<"$row"
    datum OldestTransactionSeconds "$oldest" Seconds
    datum XidAge "$xid" Count
    datum ConnectionsPercent "$connections" Percent
    datum SlotRetainedWalBytes "$retained" Bytes
  else
    say "PostgreSQL gave no reading: ${row//$'\n'/ }"
  fi
  if mountpoint -q "$data"; then
    datum DataVolumeFreePercent "$(stat -f -c '%a %b' "$data" | awk '{printf "%.1f", $1 * 100 / $2}')" Percent
  else
    say "the data volume is not mounted at ${data}"
    datum DataVolumeFreePercent 0 Percent
  fi
}

etcd_readings() {
  local health exposition
  local -a tls_args=(--cacert "$tls/ca.crt" --cert "$tls/etcd-peer.crt" --key "$tls/etcd-peer.key")
  # Exits non-zero when any member is unhealthy, having printed every member.
  health=$(ETCDCTL_API=3 etcdctl --endpoints="https://${NODE_ADDRESS}:2379" "${tls_args[@]}" \
    --command-timeout=5s endpoint health --cluster -w json 2>/dev/null) || true
  if ! exposition=$(curl -fsS --max-time 5 "${tls_args[@]}" "https://${NODE_ADDRESS}:2379/metrics"); then
    say "this etcd member does not answer: no etcd reading"
    return 0
  fi
  if [[ -n $health ]]; then
    datum EtcdMembersHealthy "$(jq '[.[] | select(.health == true)] | length' <<<"$health")" Count
  fi
  awk '$1 == "etcd_server_has_leader" {print $2}' <<<"$exposition" |
    while read -r leader; do datum EtcdLeaderPresent "$leader" Count; done
  awk '$1 == "etcd_mvcc_db_total_size_in_bytes" {size = $2}
       $1 == "etcd_server_quota_backend_bytes" {quota = $2}
       END {if (quota > 0) printf "%.1f\n", size * 100 / quota}' <<<"$exposition" |
    while read -r percent; do datum EtcdDbSizePercent "$percent" Percent; done
}

send() {
  /usr/bin/python3 -c '
import json, os, sys
import boto3
data = [json.loads(line) for line in sys.stdin if line.strip()]
client = boto3.client("cloudwatch", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_CLOUDWATCH") or None)
client.put_metric_data(Namespace=os.environ["NAMESPACE"], MetricData=data)
'
}

say "collecting ${TIER} metrics for ${NODE_NAME} every ${interval} s into ${NAMESPACE}"
while true; do
  started=$SECONDS
  {
    datum NodeMetricsPublished 1 Count "$NODE_NAME"
    case $TIER in
      backend) backend_readings ;;
      etcd) etcd_readings ;;
    esac
  } | send || say "CloudWatch refused or did not answer; the next reading follows in ${interval} s"
  sleep $((interval - (SECONDS - started) > 1 ? interval - (SECONDS - started) : 1))
done
COLLECTOR
{
  printf 'CLUSTER_NAME=%s\nNODE_NAME=%s\nNODE_ADDRESS=%s\n' "$CLUSTER_NAME" "$MEMBER_NAME" "$MEMBER_ADDRESS"
  printf 'TIER=%s\nNAMESPACE=%s\n' "$TIER" "$METRICS_NAMESPACE"
} | install_file "$METRICS_ENV" 0644 root:root
install_file "$METRICS_UNIT" 0644 root:root <<UNIT
[Unit]
Description=pem-ha metric collector (${CLUSTER_NAME} ${MEMBER_NAME})
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=${user}
EnvironmentFile=${METRICS_ENV}
# Local overrides (INTERVAL_SECONDS); pem-ha never writes this file.
EnvironmentFile=-/etc/default/pem-ha-metrics
ExecStart=${METRICS_COLLECTOR}
Restart=always
RestartSec=10

[Install]
WantedBy=multi-user.target
UNIT
touch /etc/pem-ha/pem-ha-metrics.managed
systemctl daemon-reload
changed=" ${CHANGED_FILES[*]} "
if [[ $changed == *" ${METRICS_COLLECTOR} "* || $changed == *" ${METRICS_UNIT} "* ]]; then
  # A changed script or unit: apply_service restarts on the env file alone.
  CHANGED_FILES+=("$METRICS_ENV")
fi
apply_service pem-ha-metrics "$METRICS_ENV" restart
log "the metric collector runs as ${user}, sending to CloudWatch namespace ${METRICS_NAMESPACE}"
