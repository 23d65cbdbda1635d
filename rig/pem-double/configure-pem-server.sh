#!/bin/bash
# TEST DOUBLE of EDB's /usr/edb/pem/bin/configure-pem-server.sh (the real PEM
# packages cannot be installed here; the rig's edb-pem package double,
# rig/pem-package.ts, installs it there). It records how it was called, then
# writes what EDB's documentation says the script leaves behind, at the same
# paths, so pem-ha's wiring of those files is tested (README, "What is proven
# against real PEM"):
# - every type: the agent's certificate and key under the certificate path
#   (-acp, default /root/.pem) as agent<N>.crt/.key, and agent.cfg
#   (/usr/edb/pem/agent/etc/agent.cfg: pem_host, pem_port, agent_id,
#   agent_ssl_crt, agent_ssl_key) pointing at them; the agent's database user
#   agent<N> in role pem_agent; and the `pemagent` service running the
#   package's agent double (/usr/edb/pem/agent/bin/pemagent: it reads agent.cfg
#   and its certificate at start only, and connects to the pem database as
#   agent<N> with that certificate every 5 s);
# - -t 3 on the primary: the pem database and the pem_agent role;
# - -t 2: Apache's PEM site on 8443 (/etc/apache2/sites-available/
#   edb-ssl-pem.conf, SSLCertificateFile/SSLCertificateKeyFile) with a
#   self-signed server-pem certificate under /usr/edb/pem/resources, unless
#   -kwc; real Apache serves a static /pem/login page there.
set -euo pipefail
record=/var/lib/pem-ha/configure-pem-server.calls
password=$(head -n 1 || true)
{
  printf 'argv:'
  printf ' %s' "$@"
  printf '\nenv PEM_SERVER_PASSWORD set: %s\n' "$([[ -n ${PEM_SERVER_PASSWORD:-} ]] && echo yes || echo no)"
  printf 'stdin password matches env: %s\n' "$([[ $password == "${PEM_SERVER_PASSWORD:-}" ]] && echo yes || echo no)"
  printf 'env USE_NGINX: %s\n' "${USE_NGINX-unset}"
} >>"$record"
echo "configure-pem-server.sh (test double): recorded $# arguments"

type='' hosts='' port=5432 cert_path=/root/.pem agent_cert='' agent_key='' agent_id='' role='' web_certificate=yes
while (($#)); do
  case $1 in
    -t | --type) type=$2 ;;
    -ho | --host) hosts=$2 ;;
    -p | --port) port=$2 ;;
    -acp | --pemagent-certificate-path) cert_path=$2 ;;
    -uac | --use-agent-sslcert) agent_cert=$2 ;;
    -uak | --use-agent-sslkey) agent_key=$2 ;;
    -aro | --agent-register-overrider) agent_id=$(sed -n 's/.*agent_id=\([0-9]*\).*/\1/p' <<<"$2") ;;
    --replication-role) role=$2 ;;
    -kwc | --skip-web-certificate) web_certificate=no ;;
    -kdc | --skip-db-certificate | -nhc | --no-hba-change | -ues | --use-existing-sslutils | -utd | --use-trusted-ssl-db-certificates)
      shift
      continue
      ;;
  esac
  shift 2
done
[[ -n $type && -n $agent_id && -r $agent_cert && -r $agent_key ]] ||
  { echo "configure-pem-server.sh (test double): needs -t, -aro agent_id=N and readable -uac/-uak" >&2; exit 1; }

# The pem database's roles, made on whichever backend is writable: the local
# one on the primary, else through the -ho list as the superuser (-su).
writable_psql() {
  if [[ $role == primary ]]; then
    runuser -u postgres -- psql -h /var/run/postgresql -U patroni_super -X -q -v ON_ERROR_STOP=1 -d "$1"
  else
    PGPASSWORD=$password psql -X -q -v ON_ERROR_STOP=1 \
      "host=${hosts} port=${port} dbname=$1 user=pemsuper sslmode=require target_session_attrs=read-write"
  fi
}
if [[ $role == primary ]]; then
  writable_psql postgres <<<'CREATE DATABASE pem' 2>/dev/null || true
fi
writable_psql pem <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pem_agent') THEN CREATE ROLE pem_agent NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'agent${agent_id}') THEN
    CREATE ROLE agent${agent_id} LOGIN IN ROLE pem_agent;
  END IF;
END \$\$;
SQL

install -d -m 0755 "$cert_path" /usr/edb/pem/agent/etc /usr/local/lib/pem-double /var/log/pem-double
install -m 0644 "$agent_cert" "${cert_path}/agent${agent_id}.crt"
install -m 0600 "$agent_key" "${cert_path}/agent${agent_id}.key"
cat >/usr/edb/pem/agent/etc/agent.cfg <<CFG
[PEM/agent]
pem_host=${hosts}
pem_port=${port}
agent_id=${agent_id}
agent_ssl_key=${cert_path}/agent${agent_id}.key
agent_ssl_crt=${cert_path}/agent${agent_id}.crt
log_level=warning
CFG
cat >/etc/systemd/system/pemagent.service <<'UNIT'
[Unit]
Description=PEM agent (pem-ha rig test double)

[Service]
Type=simple
ExecStart=/usr/edb/pem/agent/bin/pemagent

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable pemagent >/dev/null 2>&1
systemctl restart pemagent
echo "configure-pem-server.sh (test double): agent ${agent_id} configured (${cert_path}/agent${agent_id}.crt)"

if [[ $type == 2 ]]; then
  resources=/usr/edb/pem/resources
  install -d -m 0755 "$resources" /usr/local/lib/pem-double/www/pem
  if [[ $web_certificate == yes ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
      -subj "/CN=$(hostname)" -keyout "$resources/server-pem.key" -out "$resources/server-pem.crt" 2>/dev/null
  fi
  # shellcheck disable=SC2016 # dpkg-query's own ${Version} field
  echo "PEM login (test double) on $(hostname), edb-pem $(dpkg-query -W -f='${Version}' edb-pem)" >/usr/local/lib/pem-double/www/pem/login
  cat >/etc/apache2/sites-available/edb-ssl-pem.conf <<SITE
Listen 8443
<VirtualHost _default_:8443>
    ServerName $(hostname)
    DocumentRoot /usr/local/lib/pem-double/www
    <Directory /usr/local/lib/pem-double/www>
        Require all granted
    </Directory>
    <Location /pem/login>
        ForceType text/plain
    </Location>
    SSLEngine on
    SSLCertificateFile ${resources}/server-pem.crt
    SSLCertificateKeyFile ${resources}/server-pem.key
</VirtualHost>
SITE
  a2enmod -q ssl >/dev/null
  a2ensite -q edb-ssl-pem >/dev/null
  systemctl enable apache2 >/dev/null 2>&1
  systemctl restart apache2
  echo "configure-pem-server.sh (test double): Apache serves /pem/login on 8443"
fi
