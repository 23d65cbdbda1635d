#!/usr/bin/python3
"""The rig's stand-in for EC2's instance metadata service (IMDSv2 only, as
the stack's launch templates require): a session token from PUT
/latest/api/token, then the instance role's temporary credentials. The
caller's address tells which instance asks; its role comes from the
synthesized template (the roles file the rig writes). Nothing here is a
real credential: the S3 stand-in does not check signatures.

Usage: imds.py ADDRESS PORT ROLES_JSON
"""
import json
import secrets
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CREDENTIALS = "/latest/meta-data/iam/security-credentials/"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"

address, port, roles_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(roles_file, encoding="utf-8") as roles_json:
    ROLES = json.load(roles_json)  # instance address -> role name
TOKENS = {}  # token -> (address, expiry)


class Metadata(BaseHTTPRequestHandler):
    def reply(self, status, body, content_type="text/plain"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):
        if self.path != "/latest/api/token":
            return self.reply(404, "Not Found")
        try:
            ttl = int(self.headers.get(TOKEN_TTL_HEADER, ""))
        except ValueError:
            return self.reply(400, "Missing or invalid token TTL")
        if not 1 <= ttl <= 21600:
            return self.reply(400, "Token TTL must be 1 to 21600 seconds")
        token = secrets.token_urlsafe(32)
        TOKENS[token] = (self.client_address[0], time.time() + ttl)
        self.reply(200, token)

    def do_GET(self):
        caller = self.client_address[0]
        issued = TOKENS.get(self.headers.get(TOKEN_HEADER, ""))
        if not issued or issued[0] != caller or issued[1] < time.time():
            return self.reply(401, "Unauthorized")
        role = ROLES.get(caller)
        if role is None:
            return self.reply(404, "Not Found")
        path = self.path.rstrip("/")
        if path == CREDENTIALS.rstrip("/"):
            return self.reply(200, role)
        if path == CREDENTIALS + role:
            expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 6 * 3600))
            body = {
                "Code": "Success",
                "Type": "AWS-HMAC",
                "AccessKeyId": "ASIARIG" + secrets.token_hex(6).upper(),
                "SecretAccessKey": secrets.token_urlsafe(30),
                "Token": secrets.token_urlsafe(48),
                "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "Expiration": expiry,
            }
            return self.reply(200, json.dumps(body), "application/json")
        self.reply(404, "Not Found")

    def log_message(self, format, *args):  # one line per request, on stderr
        sys.stderr.write("imds %s %s\n" % (self.client_address[0], format % args))


ThreadingHTTPServer((address, port), Metadata).serve_forever()
