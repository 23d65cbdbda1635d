/**
 * The backup repository's side of AWS on the rig, in a node of its own:
 * Moto's S3 server (a maintained S3 implementation) over TLS at the regional
 * endpoint's name, and an IMDSv2 stand-in that hands each backend its
 * instance role's credentials, as pgBackRest's `repo1-s3-key-type=auto` asks.
 * Backends trust the stand-in's CA as instances trust S3's public one, and
 * find the endpoint name through /etc/hosts where the VPC's DNS would answer.
 * Moto keeps the bucket in memory: it lives as long as the storage node.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RigCluster } from '../cluster';
import type { Log, RigHost } from '../host/host';
import { RIG_FAMILIES } from '../family';
import { REGION } from '../local-aws/server';
import { outputResource, resourcesOfType, SynthesizedTemplate } from '../template';

/** The storage node's name on the rig network. */
export const STORAGE_NODE = 's3';
/** Where EC2's instance metadata answers, inside every instance. */
const IMDS_ADDRESS = '169.254.169.254';
const TLS_DIR = '/etc/pem-ha-rig/s3';
/** Backends trust the stand-in's CA as a system CA. */
const TRUSTED_CA = '/usr/local/share/ca-certificates/pem-ha-rig-s3.crt';
const ROLES_FILE = '/etc/pem-ha-rig/instance-roles.json';
/** Moto's own plain-HTTP port, on the storage node's loopback only. */
const MOTO_PORT = 5000;

/** Where the storage node answers DynamoDB (the runbook lock). */
export const DYNAMODB_PORT = 8000;

/** The regional S3 endpoint name the template gives pgBackRest, for the rig's region. */
export const S3_ENDPOINT = `s3.${REGION}.amazonaws.com`;

/** Makes the stand-in CA and the endpoint's certificate once; later runs keep them. */
const MAKE_CERTIFICATES = `set -eu
dir=${TLS_DIR}
[ -s "$dir/server.crt" ] && exit 0
mkdir -p "$dir" && cd "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \\
  -subj '/CN=pem-ha rig S3 stand-in CA' -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \\
  -subj '/CN=${S3_ENDPOINT}' -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:${S3_ENDPOINT},DNS:*.${S3_ENDPOINT}\\nextendedKeyUsage=serverAuth\\n' >ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \\
  -extfile ext -out server.crt 2>/dev/null
cat server.crt server.key >server.pem
chmod 0600 ca.key server.key server.pem`;

/**
 * HAProxy terminates TLS in front of Moto: Werkzeug's own TLS ends
 * connections without close_notify, which pgBackRest (rightly) reports as an
 * error, where S3 closes them cleanly.
 */
const TLS_PROXY = [
  'global',
  '  log stderr format raw local0 warning',
  'defaults',
  '  mode http',
  '  timeout connect 5s',
  '  timeout client 120s',
  '  timeout server 120s',
  'frontend s3',
  `  bind :443 ssl crt ${TLS_DIR}/server.pem`,
  '  default_backend moto',
  // DynamoDB for the runbook lock: plain HTTP to the host's functions only (the
  // nodes never call it); Moto answers both services on one port.
  'frontend dynamodb',
  `  bind :${DYNAMODB_PORT}`,
  '  default_backend moto',
  'backend moto',
  `  server moto 127.0.0.1:${MOTO_PORT}`,
  '',
].join('\n');

/** CloudFormation's part: each DynamoDB table as the template declares it (keys, TTL). */
const CREATE_TABLES = `import json, sys, boto3
db = boto3.client("dynamodb", endpoint_url="http://127.0.0.1:${MOTO_PORT}", region_name="${REGION}",
                  aws_access_key_id="rig", aws_secret_access_key="rig")
for table in json.loads(sys.argv[1]):
    if table["name"] in db.list_tables()["TableNames"]:
        continue
    db.create_table(TableName=table["name"], KeySchema=table["keys"],
                    AttributeDefinitions=table["attributes"], BillingMode="PAY_PER_REQUEST")
    if table.get("ttl"):
        db.update_time_to_live(TableName=table["name"], TimeToLiveSpecification=table["ttl"])
    print(f"table {table['name']} ready")`;

/** CloudFormation's part: the bucket as the template declares it (versioned). */
const CREATE_BUCKET = `import sys, boto3
s3 = boto3.client("s3", endpoint_url="https://${S3_ENDPOINT}", region_name="${REGION}",
                  aws_access_key_id="rig", aws_secret_access_key="rig", verify="${TLS_DIR}/ca.crt")
bucket = sys.argv[1]
if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "${REGION}"})
s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
print(f"bucket {bucket} ready")`;

const unit = (description: string, command: string) =>
  [
    '[Unit]',
    `Description=${description}`,
    '[Service]',
    'Type=simple',
    `ExecStart=${command}`,
    '',
  ].join('\n');

/** The bucket's name on the rig: its Ref, as rigResourceValues gives it. */
export function repositoryBucketName(rig: RigCluster): string {
  return String(rig.resourceValues.ref(outputResource(rig.template, 'BackupBucketName')));
}

/** Each instance's role (logical id), through its instance profile: what IMDS answers. */
export function instanceRoles(template: SynthesizedTemplate): Map<string, string> {
  const refOf = (value: unknown) => (value as { Ref?: string } | undefined)?.Ref;
  return new Map(
    resourcesOfType(template, 'AWS::EC2::Instance').flatMap(([id, instance]) => {
      const profile = refOf(instance.Properties?.IamInstanceProfile);
      const roles = profile && template.Resources[profile]?.Properties?.Roles;
      const role = Array.isArray(roles) ? refOf(roles[0]) : undefined;
      return role ? [[id, role] as [string, string]] : [];
    }),
  );
}

/**
 * Starts (or finds) the storage node: certificates, Moto on 443 of its own
 * address, IMDS on 169.254.169.254:80, and the template's bucket.
 */
export async function startObjectStorage(rig: RigCluster): Promise<void> {
  await launchObjectStorage(rig);
  await objectStorageReady(rig);
}

/**
 * The storage node with Moto and its TLS front started, not waited for (Moto
 * takes seconds to load): all it needs is the node's address, so it can start
 * while the app is still being synthesized.
 */
export async function launchMoto(host: RigHost, address: string, log: Log): Promise<void> {
  const lowerDir = RIG_FAMILIES['debian-13'].lowerDir;
  if (!existsSync(join(lowerDir, 'usr/bin/moto_server'))) {
    throw new Error(
      `the S3 stand-in (Moto) is missing from ${lowerDir}; build the Debian 13 root with: bash rig/build-root.sh`,
    );
  }
  if (!host.nodeNames.includes(STORAGE_NODE)) {
    await host.addNode({ name: STORAGE_NODE, address, lowerDir });
  } else if (!host.isRunning(STORAGE_NODE)) {
    await host.restart(STORAGE_NODE);
  }
  log(`starting the S3 stand-in (Moto) on ${STORAGE_NODE} (${address})`);
  const exec = (argv: string[]) => host.execOk(STORAGE_NODE, argv);
  const write = (path: string, content: string) => host.writeFile(STORAGE_NODE, path, content);
  await exec(['sh', '-c', MAKE_CERTIFICATES]);
  await write('/etc/hosts', `127.0.0.1 localhost ${S3_ENDPOINT}\n`);
  await write(
    '/etc/systemd/system/rig-s3.service',
    unit(
      'pem-ha rig: S3 and DynamoDB stand-in (Moto)',
      // Moto's DynamoDB knows only AWS's regions; the rig's is local-1.
      `/usr/bin/env MOTO_ALLOW_NONEXISTENT_REGION=True /usr/bin/moto_server -H 127.0.0.1 -p ${MOTO_PORT}`,
    ),
  );
  await write('/etc/haproxy/rig-s3-tls.cfg', TLS_PROXY);
  await write(
    '/etc/systemd/system/rig-s3-tls.service',
    unit(
      "pem-ha rig: TLS for the S3 stand-in at the regional endpoint's name",
      '/usr/sbin/haproxy -W -db -f /etc/haproxy/rig-s3-tls.cfg',
    ),
  );
  await exec(['systemctl', 'start', 'rig-s3']);
  await exec(['systemctl', 'restart', 'rig-s3-tls']);
}

/**
 * The storage node's services for this template: Moto (started if it is not),
 * and the instance metadata stand-in serving each node's role; not waited for.
 */
export async function launchObjectStorage(rig: RigCluster): Promise<void> {
  const address = rig.plan.storageAddress;
  await launchMoto(rig.host, address, rig.log.bind(rig));
  rig.log(`starting the instance metadata stand-in on ${STORAGE_NODE} (${address})`);
  const roles = instanceRoles(rig.template);
  const rolesByAddress = Object.fromEntries(
    rig.plan.nodes.flatMap((node) => {
      const role = roles.get(node.logicalId);
      return role ? [[node.address, role]] : [];
    }),
  );
  await rig.writeFile(STORAGE_NODE, ROLES_FILE, JSON.stringify(rolesByAddress, null, 2));
  await rig.writeFile(
    STORAGE_NODE,
    '/usr/local/sbin/rig-imds',
    readFileSync(join(__dirname, 'imds.py'), 'utf8'),
    '0755',
  );
  await rig.execOk(STORAGE_NODE, [
    'sh',
    '-c',
    `ip addr show dev eth0 | grep -q ' ${IMDS_ADDRESS}/' || ip addr add ${IMDS_ADDRESS}/32 dev eth0`,
  ]);
  await rig.writeFile(
    STORAGE_NODE,
    '/etc/systemd/system/rig-imds.service',
    unit(
      'pem-ha rig: instance metadata (IMDSv2) stand-in',
      `/usr/local/sbin/rig-imds ${IMDS_ADDRESS} 80 ${ROLES_FILE}`,
    ),
  );
  // restart: a second `up` reads a changed roles file.
  await rig.execOk(STORAGE_NODE, ['systemctl', 'restart', 'rig-imds']);
}

/** Waits for the S3 stand-in, then makes the template's bucket and tables. */
export async function objectStorageReady(rig: RigCluster): Promise<void> {
  await waitForS3(rig);
  await rig.execOk(STORAGE_NODE, ['python3', '-c', CREATE_BUCKET, repositoryBucketName(rig)]);
  await rig.execOk(STORAGE_NODE, ['python3', '-c', CREATE_TABLES, JSON.stringify(tables(rig))]);
}

/** The template's DynamoDB tables, named as the rig resolves their Ref. */
function tables(rig: RigCluster) {
  return resourcesOfType(rig.template, 'AWS::DynamoDB::Table').map(([logicalId, table]) => ({
    name: rig.resourceValues.ref(logicalId),
    keys: table.Properties?.KeySchema,
    attributes: table.Properties?.AttributeDefinitions,
    ttl: table.Properties?.TimeToLiveSpecification,
  }));
}

async function waitForS3(rig: RigCluster): Promise<void> {
  const probe = `curl -fsS -o /dev/null --max-time 2 --cacert ${TLS_DIR}/ca.crt https://${S3_ENDPOINT}/`;
  const deadline = Date.now() + 30_000;
  for (let attempt = 1; ; attempt++) {
    const result = await rig.host.exec(STORAGE_NODE, {
      argv: ['sh', '-c', probe],
      timeoutMs: 5_000,
    });
    if (result.exitCode === 0) return;
    if (Date.now() > deadline || attempt > 60) {
      throw new Error(`the S3 stand-in did not answer within 30 s: ${result.stderr.trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * What an instance has that a rig node lacks: a route to the metadata
 * address, S3's CA among its trusted ones, and the endpoint's name resolved.
 */
export async function connectToObjectStorage(rig: RigCluster, node: string): Promise<void> {
  const ca = await rig.execOk(STORAGE_NODE, ['cat', `${TLS_DIR}/ca.crt`]);
  await rig.writeFile(node, TRUSTED_CA, ca);
  const names = `${S3_ENDPOINT} ${repositoryBucketName(rig)}.${S3_ENDPOINT}`;
  const script = [
    'set -eu',
    'update-ca-certificates >/dev/null 2>&1',
    `ip route replace ${IMDS_ADDRESS}/32 dev eth0`,
    `grep -q ' ${S3_ENDPOINT}' /etc/hosts || echo '${rig.plan.storageAddress} ${names}' >>/etc/hosts`,
  ].join('\n');
  await rig.execOk(node, ['sh', '-c', script]);
}
