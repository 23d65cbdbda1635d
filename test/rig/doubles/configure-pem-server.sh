#!/bin/bash
# TEST DOUBLE of EDB's /usr/edb/pem/bin/configure-pem-server.sh (the real PEM
# packages cannot be installed here). It records how it was called, then does
# the one thing the node documents rely on: on the primary (-t 3 with
# --replication-role primary) it creates the pem database.
set -euo pipefail
record=/var/lib/pem-ha/configure-pem-server.calls
password=$(head -n 1 || true)
{
  printf 'argv:'
  printf ' %s' "$@"
  printf '\nenv PEM_SERVER_PASSWORD set: %s\n' "$([[ -n ${PEM_SERVER_PASSWORD:-} ]] && echo yes || echo no)"
  printf 'stdin password matches env: %s\n' "$([[ $password == "${PEM_SERVER_PASSWORD:-}" ]] && echo yes || echo no)"
} >>"$record"
echo "configure-pem-server.sh (test double): recorded $# arguments"
if [[ " $* " == *" --replication-role primary "* ]]; then
  runuser -u postgres -- psql -h /var/run/postgresql -U patroni_super -X -q -d postgres \
    -c 'CREATE DATABASE pem' 2>/dev/null || true
fi
