# certificates: this node's TLS identities. Private keys are made here and
# never leave the node; only CSRs go out and signed chains come back.
#   Action=request: for every identity that is missing, expiring within
#     RENEW_BEFORE_DAYS or names the wrong subject, make a new key and print
#     its CSR between `csr=<identity>` and the PEM end line.
#   Action=install: verify the chains in BUNDLE (base64 JSON: root and one
#     chain per identity) against the root and the pending keys, then switch
#     the `current` generation with one atomic rename and reload what serves it.
# Parameters: ACTION, MEMBER_NAME, MEMBER_ADDRESS, IDENTITIES, AGENT_ID,
# RENEW_BEFORE_DAYS, BUNDLE.

TLS_ROOT=/etc/pem-ha/tls
CURRENT=${TLS_ROOT}/current
PENDING=${TLS_ROOT}/pending
IFS=, read -r -a identities <<<"$IDENTITIES"

owner_of() {
  case "$1" in
    etcd-server | etcd-peer) echo etcd:etcd ;;
    postgres-server | patroni-rest | etcd-client) echo postgres:postgres ;;
    pem-agent | pem-web) echo root:root ;;
    *) die "unknown identity $1; known: etcd-server etcd-peer postgres-server patroni-rest etcd-client pem-agent pem-web" ;;
  esac
}
subject_of() {
  if [[ $1 == pem-agent ]]; then echo "agent${AGENT_ID}"; else echo "$MEMBER_NAME"; fi
}
sans_of() {
  case "$1" in
    etcd-client | pem-agent) echo "" ;;
    *) echo "DNS:${MEMBER_NAME},DNS:localhost,IP:${MEMBER_ADDRESS},IP:127.0.0.1" ;;
  esac
}
for identity in "${identities[@]}"; do owner_of "$identity" >/dev/null; done

# needs_certificate IDENTITY: why a new certificate is needed, or nothing.
needs_certificate() {
  local cert=${CURRENT}/$1.crt expected_cn
  expected_cn=$(subject_of "$1")
  if [[ ! -s $cert ]]; then
    echo "no certificate yet"
  elif ! openssl x509 -in "$cert" -noout -checkend $((RENEW_BEFORE_DAYS * 86400)) >/dev/null; then
    echo "expires within ${RENEW_BEFORE_DAYS} days"
  elif [[ $(openssl x509 -in "$cert" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= *//p') != "$expected_cn" ]]; then
    echo "subject is not CN=${expected_cn}"
  fi
}

request() {
  install -d -m 0700 "$PENDING"
  local identity reason sans requested=0
  for identity in "${identities[@]}"; do
    reason=$(needs_certificate "$identity")
    if [[ -z $reason ]]; then
      log "${identity}: current certificate is valid for more than ${RENEW_BEFORE_DAYS} days"
      continue
    fi
    log "${identity}: ${reason}; making a new P-256 key and CSR"
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "${PENDING}/${identity}.key")
    sans=$(sans_of "$identity")
    openssl req -new -key "${PENDING}/${identity}.key" -subj "/CN=$(subject_of "$identity")" \
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
  [[ $(openssl x509 -in "$leaf" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= *//p') == "$(subject_of "$identity")" ]] ||
    die "${identity}: the certificate is not for CN=$(subject_of "$identity")"
  rm -f "$leaf" "$intermediates"
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
  ln -sfn "$generation" "${TLS_ROOT}/current.next"
  mv -T "${TLS_ROOT}/current.next" "$CURRENT"
  trap - EXIT
  # Keep the two newest earlier generations for inspection; drop the rest.
  find "$TLS_ROOT" -mindepth 1 -maxdepth 1 -type d -name 'gen-*' ! -name "$generation" -printf '%f\n' |
    sort -r | tail -n +3 | while read -r old; do rm -rf "${TLS_ROOT:?}/${old}"; done
  for identity in "${installed[@]}"; do rm -f "${PENDING}/${identity}.key" "${PENDING}/${identity}.csr"; done
  log "installed ${#installed[@]} certificate(s) as ${generation}"
  # Serving processes pick the new files up without a restart: etcd reads them
  # per handshake; Patroni on SIGHUP rebuilds its REST server and reloads PostgreSQL.
  if service_running patroni; then
    log "reloading Patroni (SIGHUP) so the REST API and PostgreSQL serve the new certificates"
    systemctl reload patroni
  fi
}

case "$ACTION" in
  request) request ;;
  install)
    [[ $BUNDLE != - ]] || die "Action install needs a Bundle"
    install_bundle
    ;;
  *) die "Action must be request or install; got ${ACTION}" ;;
esac
