# etcd: this member's configuration with client and peer TLS, start, and wait
# until the whole cluster answers healthy. Members must run this document at
# the same time: a new member only reports ready once a quorum has formed.
# The first member of INITIAL_CLUSTER then sets up etcd's access control
# (etcd-access.sh), before any Patroni starts.
# Parameters: MEMBER_NAME, MEMBER_ADDRESS, INITIAL_CLUSTER, CLUSTER_NAME,
# SECRET_PREFIX, START_TIMEOUT_SECONDS.

TLS=/etc/pem-ha/tls/current
DATA_DIR=/var/lib/etcd/pem-ha

for file in ca.crt etcd-server.crt etcd-server.key etcd-peer.crt etcd-peer.key; do
  [[ -r $TLS/$file ]] || die "missing ${TLS}/${file}: the certificates step must run before etcd"
done
if [[ ",${INITIAL_CLUSTER}," != *",${MEMBER_NAME}=https://${MEMBER_ADDRESS}:2380,"* ]]; then
  die "InitialCluster does not name this member as ${MEMBER_NAME}=https://${MEMBER_ADDRESS}:2380; got ${INITIAL_CLUSTER}"
fi

install -d -m 0700 -o etcd -g etcd "$DATA_DIR"
# Set before this instance asks the cluster to take it in place of the old
# member: a second run after a failure then joins instead of adding again.
JOIN_MARKER=/var/lib/pem-ha/etcd-joins-existing
PEER_URL="https://${MEMBER_ADDRESS}:2380"

# The other members' client endpoints, from InitialCluster.
other_endpoints() {
  tr ',' '\n' <<<"$INITIAL_CLUSTER" | grep -vF "=${PEER_URL}" | sed -E 's/^[^=]+=//; s/:2380$/:2379/' |
    paste -sd, -
}
others_ctl() { etcd_at "$(other_endpoints)" "$@"; }

# A replacement instance: no member data here, while the running cluster lists
# a started member at this address (the instance this one replaces). The old
# member is removed and this one added, only while every other member is
# healthy (else quorum could be lost); then etcd joins the existing cluster.
# At the first bootstrap the other members list this one unstarted: no rejoin.
join_state=new
if [[ -d $DATA_DIR/member ]]; then
  log "member data exists in ${DATA_DIR}: etcd rejoins with it (initial-cluster settings are ignored)"
elif [[ -f $JOIN_MARKER ]]; then
  join_state=existing
  log "this instance was added to the running etcd cluster in place of the old ${MEMBER_NAME}: joining it"
elif listing=$(others_ctl member list 2>/dev/null); then
  old=$(awk -F', ' -v url="$PEER_URL" '$4 == url && $2 == "started" && $3 != "" {print $1}' <<<"$listing")
  if [[ -n $old ]]; then
    log "the running etcd cluster lists ${MEMBER_NAME} (${old}) at ${PEER_URL}, and this instance has no member data: replacing that member"
    health=$(others_ctl endpoint health -w json 2>/dev/null) || true
    others=$(grep -o , <<<"$INITIAL_CLUSTER" | wc -l)
    healthy=$(jq '[.[]? | select(.health == true)] | length' <<<"${health:-[]}" 2>/dev/null || echo 0)
    ((healthy == others)) ||
      die "only ${healthy} of the ${others} other etcd members answer healthy: replacing ${MEMBER_NAME} now could lose quorum; nothing was changed"
    touch "$JOIN_MARKER"
    others_ctl member remove "$old" >&2
    others_ctl member add "$MEMBER_NAME" --peer-urls="$PEER_URL" >&2
    join_state=existing
    log "removed the old member ${old} and added ${MEMBER_NAME}: joining the running cluster"
  fi
fi

# Debian's unit reads /etc/default/etcd; etcd reads its leaf files on every
# handshake, so certificate rotation needs no restart.
install_file /etc/default/etcd 0644 root:root <<CONF
# Written by pem-ha's etcd document; edits are replaced on the next run.
ETCD_NAME="${MEMBER_NAME}"
ETCD_DATA_DIR="${DATA_DIR}"
ETCD_LISTEN_PEER_URLS="https://${MEMBER_ADDRESS}:2380"
ETCD_LISTEN_CLIENT_URLS="https://${MEMBER_ADDRESS}:2379,https://127.0.0.1:2379"
ETCD_ADVERTISE_CLIENT_URLS="https://${MEMBER_ADDRESS}:2379"
ETCD_INITIAL_ADVERTISE_PEER_URLS="https://${MEMBER_ADDRESS}:2380"
ETCD_INITIAL_CLUSTER="${INITIAL_CLUSTER}"
ETCD_INITIAL_CLUSTER_TOKEN="${CLUSTER_NAME}"
ETCD_INITIAL_CLUSTER_STATE="${join_state}"
# Peers need a member's peer certificate (it alone names pem-ha-etcd-peer). The
# client port takes no such check: etcd's gRPC gateway, which Patroni talks to,
# dials that port itself without verifying, and the check then refuses it;
# etcd's access control scopes that port instead (etcd-access.sh).
ETCD_CLIENT_CERT_AUTH="true"
ETCD_TRUSTED_CA_FILE="${TLS}/ca.crt"
ETCD_CERT_FILE="${TLS}/etcd-server.crt"
ETCD_KEY_FILE="${TLS}/etcd-server.key"
ETCD_PEER_CLIENT_CERT_AUTH="true"
ETCD_PEER_CERT_ALLOWED_HOSTNAME="pem-ha-etcd-peer"
ETCD_PEER_TRUSTED_CA_FILE="${TLS}/ca.crt"
ETCD_PEER_CERT_FILE="${TLS}/etcd-peer.crt"
ETCD_PEER_KEY_FILE="${TLS}/etcd-peer.key"
ETCD_AUTO_COMPACTION_MODE="periodic"
ETCD_AUTO_COMPACTION_RETENTION="1h"
CONF
touch /etc/pem-ha/etcd.managed
# --no-block: a new member reports ready only once a quorum exists, and the
# other members are starting right now in their own documents.
apply_service etcd /etc/default/etcd restart --no-block

etcd_ctl() { etcd_at "https://${MEMBER_ADDRESS}:2379" "$@"; }
cluster_healthy() { etcd_ctl endpoint health --cluster; }
log "waiting (up to ${START_TIMEOUT_SECONDS} s) for every member to answer healthy"
wait_until "$START_TIMEOUT_SECONDS" "the etcd cluster to be healthy" cluster_healthy
# What each member says now, for the record: the wait above is the check, so a
# member slow to answer this second call (a busy host) does not fail the step.
etcd_ctl endpoint health --cluster 2>&1 | sed 's/^/  /' ||
  log "a member was slow to answer just now; every member had answered healthy above"
members=$(etcd_ctl member list | wc -l)
log "etcd member ${MEMBER_NAME} is healthy; the cluster has ${members} members"
if [[ $INITIAL_CLUSTER == "${MEMBER_NAME}="* ]]; then
  ensure_etcd_access
fi
