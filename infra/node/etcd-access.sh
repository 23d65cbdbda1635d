# etcd's access control: ensure_etcd_access, run by the first member of
# INITIAL_CLUSTER at the end of its etcd run, before any Patroni starts.
#
# Certificates alone cannot scope the client port: etcd's gRPC gateway, which
# Patroni's etcd3 client talks to, dials 2379 itself without verifying, so
# --client-cert-allowed-hostname would lock Patroni out (found on the rig).
# With etcd's authentication on:
# - Patroni logs in as `patroni` (password in <prefix>/patroniEtcd); its role
#   reads and writes /service/<cluster>/ and nothing else;
# - a gRPC caller without a login is its certificate's common name. The
#   members (etcd-N: users without a password, role root) may do anything,
#   which member replacement and upgrades need; no other identity the cluster
#   CA signs is an etcd user, so it may do nothing that needs a permission;
# - etcd refuses any certificate with a common name on its JSON gateway, so
#   Patroni's own certificate has none.
# Idempotent: what is missing is made, a patroni password that no longer logs
# in is set again, authentication is turned on when off. Passwords travel on
# stdin and in etcdctl's environment only, never on a command line.

ensure_etcd_access() {
  local prefix="/service/${CLUSTER_NAME}/" password user users roles status
  password=$(fetch_secret "${SECRET_PREFIX}/patroniEtcd" password)
  local_etcd() { etcd_at "https://${MEMBER_ADDRESS}:2379" "$@"; }
  users=$(local_etcd user list) || die "could not list etcd's users as ${MEMBER_NAME}"
  roles=$(local_etcd role list) || die "could not list etcd's roles as ${MEMBER_NAME}"
  has() { grep -qx "$2" <<<"$1"; }

  # root must exist before authentication can be turned on; the members act as it.
  for user in root $(tr ',' '\n' <<<"$INITIAL_CLUSTER" | cut -d= -f1); do
    if ! has "$users" "$user"; then
      local_etcd user add "$user" --no-password >/dev/null
      log "etcd user ${user} added (no password: a certificate with this common name acts as it)"
    fi
    local_etcd user grant-role "$user" root >/dev/null
  done

  if ! has "$roles" patroni; then
    local_etcd role add patroni >/dev/null
    log "etcd role patroni added"
  fi
  local_etcd role grant-permission patroni readwrite "$prefix" --prefix=true >/dev/null
  log "etcd role patroni may read and write ${prefix}* and nothing else"

  status=$(local_etcd auth status)
  if ! has "$users" patroni; then
    local_etcd user add patroni --interactive=false <<<"$password" >/dev/null
    log "etcd user patroni added with the password in ${SECRET_PREFIX}/patroniEtcd"
  elif [[ $status == *"Status: false"* ]] ||
    ! ETCDCTL_USER=patroni ETCDCTL_PASSWORD=$password \
      local_etcd get --count-only --prefix "$prefix" >/dev/null 2>&1; then
    local_etcd user passwd patroni --interactive=false <<<"$password" >/dev/null
    log "etcd user patroni: password set again from ${SECRET_PREFIX}/patroniEtcd"
  fi
  local_etcd user grant-role patroni patroni >/dev/null

  if [[ $status == *"Status: true"* ]]; then
    log "etcd's authentication was already on"
  else
    local_etcd auth enable >/dev/null
    log "etcd's authentication is on: Patroni's login reaches ${prefix}* only, other certificates nothing"
  fi
}
