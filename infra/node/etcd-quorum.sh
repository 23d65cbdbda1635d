# etcd-quorum: run on one etcd member before another one (LEAVING_MEMBER) is
# replaced. Every member but the leaving one must answer healthy: the
# replacement removes the old member and adds the new one, and with one more
# member down at that moment the cluster would lose quorum and Patroni its DCS.
# Parameters: LEAVING_MEMBER, INITIAL_CLUSTER.

TLS=/etc/pem-ha/tls/current

if [[ ",${INITIAL_CLUSTER}," != *",${LEAVING_MEMBER}=https://"* ]]; then
  die "InitialCluster names no member ${LEAVING_MEMBER}; got ${INITIAL_CLUSTER}"
fi
remaining=$(tr ',' '\n' <<<"$INITIAL_CLUSTER" | grep -v "^${LEAVING_MEMBER}=" |
  sed -E 's/^[^=]+=//; s/:2380$/:2379/' | paste -sd, -)
count=$(tr ',' '\n' <<<"$remaining" | grep -c .)
log "asking the ${count} etcd members other than ${LEAVING_MEMBER} for their health"
health=$(etcd_at "$remaining" endpoint health -w json 2>/dev/null) || true
healthy=$(jq -r '[.[]? | select(.health == true)] | length' <<<"${health:-[]}" 2>/dev/null || echo 0)
jq -r '.[]? | "  \(.endpoint): \(if .health then "healthy" else "unhealthy: \(.error // "no answer")" end)"' \
  <<<"${health:-[]}" 2>/dev/null || true
((healthy == count)) ||
  die "only ${healthy} of the ${count} etcd members other than ${LEAVING_MEMBER} answer healthy: replacing ${LEAVING_MEMBER} now could lose quorum; nothing was changed"
log "all ${count} other etcd members answer healthy: ${LEAVING_MEMBER} may be replaced"
