#!/bin/bash
# TEST DOUBLE of EDB's /usr/edb/pem/bin/configure-pem-server.sh (the real PEM
# packages cannot be installed here). It records how it was called, then does
# what the cluster around PEM relies on:
# - on the primary (-t 3 with --replication-role primary) it creates the pem
#   database;
# - on a web host (-t 2) it serves PEM's login page, GET /pem/login, over
#   HTTPS on 8443 with the node's pem-web certificate, in Apache's place, so
#   the ALB's health check and a browser's login have something to reach.
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
if [[ " $* " == *" -t 2 "* ]]; then
  install -d -m 0755 /usr/local/lib/pem-double
  cat >/usr/local/lib/pem-double/web.py <<'PY'
"""PEM web application test double: GET /pem/login answers 200 over HTTPS."""
import http.server, socket, ssl

TLS = "/etc/pem-ha/tls/current"


class Login(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path.split("?")[0] == "/pem/login"
        body = (f"PEM login (test double) on {socket.gethostname()}\n" if ok else "not found\n").encode()
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("0.0.0.0", 8443), Login)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(f"{TLS}/pem-web.crt", f"{TLS}/pem-web.key")
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
PY
  cat >/etc/systemd/system/pem-web-double.service <<'UNIT'
[Unit]
Description=PEM web application (pem-ha rig test double)

[Service]
Type=simple
ExecStart=/usr/bin/python3 /usr/local/lib/pem-double/web.py

[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable pem-web-double >/dev/null 2>&1
  systemctl restart pem-web-double
  echo "configure-pem-server.sh (test double): serving /pem/login on 8443"
fi
