# certificates: this node's TLS identities. Private keys are made here and
# never leave the node; only CSRs go out and signed chains come back.
#   Action=request: for every identity that is missing, expiring within
#     RENEW_BEFORE_DAYS, or naming the wrong subject or names, make a new key and print
#     its CSR between `csr=<identity>` and the PEM end line.
#   Action=install: verify the chains in BUNDLE (base64 JSON: root and one
#     chain per identity) against the root and the pending keys, then switch
#     the `current` generation with one atomic rename, reload what serves it
#     and check that the running services present the new certificates; if
#     one does not within SERVE_WAIT_SECONDS, switch back and fail.
# Both actions end with `not-after=<identity>=<epoch seconds>` for every
# identity of the current generation (what the expiry metrics are made from).
# Parameters: ACTION, MEMBER_NAME, MEMBER_ADDRESS, IDENTITIES, AGENT_ID,
# RENEW_BEFORE_DAYS, SERVE_WAIT_SECONDS, BUNDLE.

TLS_ROOT=/etc/pem-ha/tls
CURRENT=${TLS_ROOT}/current
PENDING=${TLS_ROOT}/pending
IFS=, read -r -a identities <<<"$IDENTITIES"

owner_of() {
  case "$1" in
    etcd-server | etcd-peer) echo etcd:etcd ;;
    postgres-server | patroni-rest | pgbackrest | etcd-client) echo postgres:postgres ;;
    pem-agent | pem-web) echo root:root ;;
    *) die "unknown identity $1; known: etcd-server etcd-peer postgres-server patroni-rest pgbackrest etcd-client pem-agent pem-web" ;;
  esac
}
# The subject's common name; none for etcd-client: etcd refuses a client
# certificate with one on its JSON gateway (Patroni's way in) once its access
# control is on. Patroni logs in to etcd by password instead.
subject_of() {
  case "$1" in
    pem-agent) echo "agent${AGENT_ID}" ;;
    etcd-client) echo "" ;;
    *) echo "$MEMBER_NAME" ;;
  esac
}
# common_name_of CERT: the certificate's subject common name, or nothing.
common_name_of() {
  openssl x509 -in "$1" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= *//p'
}
# described_subject IDENTITY: how the wanted subject reads in messages.
described_subject() {
  local cn
  cn=$(subject_of "$1")
  if [[ -n $cn ]]; then echo "CN=${cn}"; else echo "an empty subject"; fi
}
# The names each certificate carries, exactly as the signer entitles them (functions/lib/pki.ts):
# etcd admits on its peer port only the certificates naming pem-ha-etcd-peer.
sans_of() {
  local own="DNS:${MEMBER_NAME},DNS:localhost,IP:${MEMBER_ADDRESS},IP:127.0.0.1"
  case "$1" in
    pem-agent) echo "" ;;
    etcd-client) echo "DNS:${MEMBER_NAME}" ;;
    etcd-peer) echo "${own},DNS:pem-ha-etcd-peer" ;;
    # Clients verify the NLB's name (sslmode=verify-full) as well as the node's.
    postgres-server) echo "${own}${DATABASE_ENDPOINT_NAME:+,DNS:${DATABASE_ENDPOINT_NAME,,}}" ;;
    *) echo "$own" ;;
  esac
}
# wanted_names IDENTITY / names_in CERT: the subject alternative names, sorted, comparable.
wanted_names() {
  sans_of "$1" | tr , '\n' | sed 's/^IP:/IP Address:/' | sort | paste -sd,
}
names_in() {
  openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null | sed 1d | tr -d ' ' | tr , '\n' |
    sed 's/^IPAddress:/IP Address:/' | sort | paste -sd,
}
# The unit and port that serve an identity to the network (none for client certificates).
unit_of() {
  case "$1" in
    etcd-server | etcd-peer) echo etcd ;;
    postgres-server | patroni-rest) echo patroni ;;
    pgbackrest) echo pgbackrest-server ;;
    pem-web) echo apache2 ;;
    *) echo "" ;;
  esac
}
port_of() {
  case "$1" in
    etcd-server) echo 2379 ;;
    etcd-peer) echo 2380 ;;
    postgres-server) echo 5432 ;;
    patroni-rest) echo 8008 ;;
    pgbackrest) echo 8432 ;;
    pem-web) echo 8443 ;;
    *) echo "" ;;
  esac
}
for identity in "${identities[@]}"; do owner_of "$identity" >/dev/null; done

# A PEM agent's number never moves: PEM registered this node under it, and a
# certificate for another number would make it a second, unknown agent.
for marker in /var/lib/pem-ha/pem-backend-configured /var/lib/pem-ha/pem-web-configured; do
  [[ -f $marker ]] || continue
  registered=$(sed -n 's/.*agent_id=\([0-9]*\).*/\1/p' "$marker")
  [[ -z $registered || $registered == "$AGENT_ID" ]] ||
    die "${MEMBER_NAME} is registered with PEM as agent ${registered} (${marker}), but this run gives it agent ${AGENT_ID}: agent numbers never move; nothing was changed"
done

serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }

# served_serial IDENTITY: the serial of the certificate its port presents now
# (PostgreSQL after its SSLRequest), or nothing when the handshake fails.
served_serial() {
  local starttls=()
  [[ $1 != postgres-server ]] || starttls=(-starttls postgres)
  timeout 10 openssl s_client -connect "${MEMBER_ADDRESS}:$(port_of "$1")" "${starttls[@]}" \
    </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null | cut -d= -f2 || true
}

print_expiry() {
  local identity
  for identity in "${identities[@]}"; do
    [[ -s ${CURRENT}/${identity}.crt ]] || continue
    echo "not-after=${identity}=$(date -u -d "$(openssl x509 -in "${CURRENT}/${identity}.crt" -noout -enddate | cut -d= -f2)" +%s)"
  done
}

# needs_certificate IDENTITY: why a new certificate is needed, or nothing.
needs_certificate() {
  local cert=${CURRENT}/$1.crt expected_cn
  expected_cn=$(subject_of "$1")
  if [[ ! -s $cert ]]; then
    echo "no certificate yet"
  elif ! openssl x509 -in "$cert" -noout -checkend $((RENEW_BEFORE_DAYS * 86400)) >/dev/null; then
    echo "expires within ${RENEW_BEFORE_DAYS} days"
  elif [[ $(common_name_of "$cert") != "$expected_cn" ]]; then
    echo "its subject is not $(described_subject "$1")"
  elif [[ $(names_in "$cert") != "$(wanted_names "$1")" ]]; then
    echo "its names are not [$(wanted_names "$1")]"
  fi
}

request() {
  install -d -m 0700 "$PENDING"
  local identity reason sans cn requested=0
  for identity in "${identities[@]}"; do
    reason=$(needs_certificate "$identity")
    if [[ -z $reason ]]; then
      log "${identity}: current certificate is valid for more than ${RENEW_BEFORE_DAYS} days"
      continue
    fi
    log "${identity}: ${reason}; making a new P-256 key and CSR"
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "${PENDING}/${identity}.key")
    sans=$(sans_of "$identity")
    cn=$(subject_of "$identity")
    openssl req -new -key "${PENDING}/${identity}.key" -subj "/${cn:+CN=${cn}}" \
      ${sans:+-addext "subjectAltName=${sans}"} -out "${PENDING}/${identity}.csr"
    echo "csr=${identity}"
    cat "${PENDING}/${identity}.csr"
    requested=$((requested + 1))
  done
  log "${requested} certificate request(s) made"
}

# verify_pair IDENTITY DIR ROOT: the chain in DIR verifies to ROOT, the key in
# DIR matches its leaf, and the leaf is valid now with the expected subject.
verify_pair() {
  local identity=$1 dir=$2 root=$3 leaf intermediates
  leaf=$(mktemp) intermediates=$(mktemp)
  awk 'n==0{print} /END CERTIFICATE/{n=1}' "${dir}/${identity}.crt" >"$leaf"
  awk 'n==1{print} /END CERTIFICATE/{n=1}' "${dir}/${identity}.crt" >"$intermediates"
  [[ -s $intermediates ]] || die "${identity}: the chain has no intermediate certificate"
  openssl verify -CAfile "$root" -untrusted "$intermediates" "$leaf" >/dev/null ||
    die "${identity}: the chain does not verify to the cluster root"
  [[ $(openssl pkey -in "${dir}/${identity}.key" -pubout) == "$(openssl x509 -in "$leaf" -noout -pubkey)" ]] ||
    die "${identity}: the certificate does not match the pending key"
  openssl x509 -in "$leaf" -noout -checkend 0 >/dev/null || die "${identity}: the certificate has expired"
  [[ $(common_name_of "$leaf") == "$(subject_of "$identity")" ]] ||
    die "${identity}: the certificate's subject is not $(described_subject "$identity")"
  local want got
  want=$(wanted_names "$identity")
  got=$(names_in "$leaf")
  [[ $got == "$want" ]] || die "${identity}: the certificate names [${got}]; this node needs [${want}]"
  rm -f "$leaf" "$intermediates"
  # The services' own TLS stack (Python's ssl for Patroni, OpenSSL for the
  # rest) must accept the pair: a pair it refuses would stop the REST API.
  /usr/bin/python3 -c 'import ssl, sys; ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(sys.argv[1], sys.argv[2])' \
    "${dir}/${identity}.crt" "${dir}/${identity}.key" 2>/dev/null ||
    die "${identity}: Python's ssl refuses the certificate and key as a pair"
}

install_bundle() {
  local generation staging identity owner
  generation=gen-$(date -u +%Y%m%dT%H%M%SZ)-$$
  staging=${TLS_ROOT}/${generation}
  install -d -m 0755 "$staging"
  # A generation that fails verification never goes live and is not kept.
  trap 'rm -rf "$staging"' EXIT
  # Identities not renewed this time carry over from the current generation.
  if [[ -d $CURRENT ]]; then cp -a "${CURRENT}/." "$staging/"; fi
  # The bundle's files go into the staging generation; their names come back.
  local installed
  mapfile -t installed < <(BUNDLE="$BUNDLE" STAGING="$staging" /usr/bin/python3 <<'PY'
import base64, json, os
bundle = json.loads(base64.b64decode(os.environ["BUNDLE"], validate=True))
staging = os.environ["STAGING"]
with open(os.path.join(staging, "ca.crt"), "w") as out:
    out.write(bundle["root"])
for identity, chain in bundle["certificates"].items():
    with open(os.path.join(staging, f"{identity}.crt"), "w") as out:
        out.write(chain)
    print(identity)
PY
  )
  for identity in "${installed[@]}"; do
    [[ -n $identity ]] || continue
    [[ -f ${PENDING}/${identity}.key ]] || die "${identity}: no pending key on this node (run Action=request first)"
    cp "${PENDING}/${identity}.key" "${staging}/${identity}.key"
  done
  for identity in "${identities[@]}"; do
    [[ -f ${staging}/${identity}.crt ]] || die "${identity}: neither the bundle nor the current generation has it"
    verify_pair "$identity" "$staging" "${staging}/ca.crt"
    owner=$(owner_of "$identity")
    chown "$owner" "${staging}/${identity}.key" "${staging}/${identity}.crt"
    chmod 0600 "${staging}/${identity}.key"
    chmod 0644 "${staging}/${identity}.crt"
  done
  chmod 0644 "${staging}/ca.crt"
  local previous trust_changed=false
  previous=$(readlink "$CURRENT" 2>/dev/null || true)
  if [[ -n $previous ]] && ! cmp -s "${TLS_ROOT}/${previous}/ca.crt" "${staging}/ca.crt"; then
    trust_changed=true
  fi
  rewire_pem
  switch_to "$generation"
  trap - EXIT
  for identity in "${installed[@]}"; do rm -f "${PENDING}/${identity}.key" "${PENDING}/${identity}.csr"; done
  log "installed ${#installed[@]} certificate(s) as ${generation}"
  reload_services "$trust_changed"
  local failed
  failed=$(check_served "$staging")
  if [[ -n $failed ]]; then
    if [[ -n $previous ]]; then
      switch_to "$previous"
      reload_services "$trust_changed"
      die "${failed}; switched back to ${previous}"
    fi
    die "$failed"
  fi
  # Keep the two newest earlier generations for inspection; drop the rest.
  find "$TLS_ROOT" -mindepth 1 -maxdepth 1 -type d -name 'gen-*' ! -name "$generation" -printf '%f\n' |
    sort -r | tail -n +3 | while read -r old; do rm -rf "${TLS_ROOT:?}/${old}"; done
}

# PEM's agent and Apache read the files in place (pem-wiring.sh): a node
# configured before that wiring is pointed at them now, so the restart and
# reload below reach them.
rewire_pem() {
  if [[ -f $PEM_AGENT_CFG ]]; then rewire_agent_certificate || true; fi
  if [[ -f $PEM_SITE ]]; then rewire_web_certificate || true; fi
}

# switch_to GENERATION: points `current` at it with one atomic rename.
switch_to() {
  ln -sfn "$1" "${TLS_ROOT}/current.next"
  mv -T "${TLS_ROOT}/current.next" "$CURRENT"
  log "current -> $1"
}

# Serving processes pick the new files up without a restart: etcd reads them
# on every handshake; PostgreSQL on a configuration reload; Patroni rebuilds
# its REST server on SIGHUP (not `patronictl reload`, which itself needs TLS).
# Only a new trust file (a root rollover) restarts etcd, which reads it at start.
# pgBackRest's TLS server reads its files at start only: it is restarted
# (between connections it holds no state; a backup using it at that moment
# fails and is taken again by the next run).
# reload_services TRUST_CHANGED
reload_services() {
  if [[ $1 == true ]] && service_running etcd; then
    log "the trust file changed and etcd reads it only at start: restarting this member"
    systemctl restart etcd
    wait_until 120 "this etcd member to be healthy again" etcd_member_healthy
    log "etcd member healthy with the new trust file"
  fi
  if service_running patroni; then
    if local_psql -qAt -d postgres -c 'SELECT pg_reload_conf()' >/dev/null; then
      log "PostgreSQL reloaded its configuration (pg_reload_conf)"
    else
      log "pg_reload_conf failed (PostgreSQL not accepting connections?); Patroni's reload covers it"
    fi
    log "reloading Patroni (SIGHUP) so the REST API serves the new certificate"
    systemctl reload patroni
  fi
  if service_running pgbackrest-server; then
    log "restarting pgBackRest's TLS server so it serves the new certificate and trust"
    systemctl restart pgbackrest-server
  fi
  if service_running apache2; then
    log "reloading Apache gracefully (apachectl graceful) so PEM's site on 8443 serves the new certificate"
    systemctl reload apache2
  fi
  if service_running pemagent; then
    log "restarting the PEM agent, which reads agent.cfg's certificate only at start"
    systemctl restart pemagent
  fi
}

# agent_certificate_serial: the serial of the certificate PEM's agent is
# configured with (agent.cfg's agent_ssl_crt), or nothing.
agent_certificate_serial() {
  local crt
  crt=$(sed -n 's/^agent_ssl_crt[[:space:]]*=[[:space:]]*//p' "$PEM_AGENT_CFG" 2>/dev/null | tail -n 1)
  [[ -n $crt && -r $crt ]] && serial_of "$crt"
}

etcd_member_healthy() {
  ETCDCTL_API=3 etcdctl --endpoints="https://${MEMBER_ADDRESS}:2379" --cacert="${CURRENT}/ca.crt" \
    --cert="${CURRENT}/etcd-server.crt" --key="${CURRENT}/etcd-server.key" --command-timeout=5s \
    endpoint health
}

# check_served GENERATION_DIR: waits (bounded) until every running service of
# this node presents the generation's certificate; prints what did not.
check_served() {
  local dir=$1 identity unit want got deadline
  for identity in "${identities[@]}"; do
    if [[ $identity == pem-agent && -f $PEM_AGENT_CFG ]]; then
      want=$(serial_of "${dir}/${identity}.crt")
      got=$(agent_certificate_serial || true)
      if [[ $got != "$want" ]]; then
        echo "pem-agent: PEM's agent is configured (${PEM_AGENT_CFG} agent_ssl_crt) with serial ${got:-none}, not ${want}: was agent.cfg edited by hand? The PEM document points it at ${CURRENT} again"
        return 0
      fi
      log "pem-agent: PEM's agent is configured with serial ${want}" >&2
      continue
    fi
    unit=$(unit_of "$identity")
    if [[ -z $unit ]] || ! service_running "$unit"; then continue; fi
    want=$(serial_of "${dir}/${identity}.crt")
    deadline=$((SECONDS + SERVE_WAIT_SECONDS))
    got=$(served_serial "$identity")
    while [[ $got != "$want" ]] && ((SECONDS < deadline)); do
      sleep 1
      got=$(served_serial "$identity")
    done
    if [[ $got != "$want" ]]; then
      echo "${identity}: port $(port_of "$identity") still serves serial ${got:-none} after ${SERVE_WAIT_SECONDS} s, not ${want}"
      return 0
    fi
    log "${identity}: port $(port_of "$identity") serves serial ${want}" >&2
  done
}

case "$ACTION" in
  request) request ;;
  install)
    [[ $BUNDLE != - ]] || die "Action install needs a Bundle"
    install_bundle
    ;;
  *) die "Action must be request or install; got ${ACTION}" ;;
esac
print_expiry
