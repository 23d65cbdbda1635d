import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import {
  CaMaterial,
  createIntermediateCa,
  createRootCa,
  CsrRejectedError,
  entitlementsOf,
  ETCD_PEER_NAME,
  issueLeaf,
  parseCsrBlocks,
} from '../../functions/lib/pki';

const BACKEND = { name: 'backend-1', tier: 'backend' as const, address: '10.40.3.20', agentId: 1 };
let root: CaMaterial;
let intermediate: CaMaterial;
let dir: string;

/** A key and CSR made the way the certificates document makes them on a node. */
function nodeCsr(
  subject: string,
  sans?: string,
  algorithm = ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
): string {
  const key = join(dir, `${Math.random()}.key`);
  execFileSync('openssl', ['genpkey', ...algorithm, '-out', key]);
  const san = sans ? ['-addext', `subjectAltName=${sans}`] : [];
  return execFileSync('openssl', ['req', '-new', '-key', key, '-subj', subject, ...san], {
    encoding: 'utf8',
  });
}

const entitlement = (identity: string, node = BACKEND) =>
  entitlementsOf(node).find((e) => e.identity === identity)!;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pki-test-'));
  root = await createRootCa({ commonName: 'pem-ha root CA', validityDays: 3650 });
  intermediate = await createIntermediateCa(root, {
    commonName: 'pem-ha issuing CA',
    validityDays: 1825,
  });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cluster CA', () => {
  test('Given a new CA, then the root may sign one level of CAs and the intermediate only leaves', () => {
    const rootCert = new x509.X509Certificate(root.certificatePem);
    const intermediateCert = new x509.X509Certificate(intermediate.certificatePem);
    expect(rootCert.getExtension(x509.BasicConstraintsExtension)).toMatchObject({
      ca: true,
      pathLength: 1,
    });
    expect(intermediateCert.getExtension(x509.BasicConstraintsExtension)).toMatchObject({
      ca: true,
      pathLength: 0,
    });
    expect(intermediateCert.issuer).toBe(rootCert.subject);
  });
});

describe('issueLeaf', () => {
  test('Given a CSR made on the node, when signed, then openssl verifies the chain to the root with the node names', async () => {
    const csr = nodeCsr('/CN=backend-1', 'DNS:backend-1,DNS:localhost,IP:10.40.3.20,IP:127.0.0.1');
    const chain = await issueLeaf('backend-1', csr, entitlement('postgres-server'), intermediate, {
      validityDays: 90,
    });

    const [leaf, issuer] = chain.split(/(?<=-----END CERTIFICATE-----)\n/).filter((p) => p.trim());
    writeFileSync(join(dir, 'root.pem'), root.certificatePem);
    writeFileSync(join(dir, 'issuer.pem'), issuer);
    writeFileSync(join(dir, 'leaf.pem'), leaf);
    const verified = execFileSync(
      'openssl',
      [
        'verify',
        '-CAfile',
        join(dir, 'root.pem'),
        '-untrusted',
        join(dir, 'issuer.pem'),
        join(dir, 'leaf.pem'),
      ],
      { encoding: 'utf8' },
    );
    expect(verified).toContain(': OK');
    const text = execFileSync(
      'openssl',
      ['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-ext', 'subjectAltName,extendedKeyUsage'],
      { encoding: 'utf8' },
    );
    expect(text).toContain(
      'DNS:backend-1, DNS:localhost, IP Address:10.40.3.20, IP Address:127.0.0.1',
    );
    expect(text).toContain('TLS Web Server Authentication');
    const days = (new x509.X509Certificate(leaf).notAfter.getTime() - Date.now()) / 86_400_000;
    expect(Math.round(days)).toBe(90);
  });

  test("Given a CSR for another node's name, when signed, then it is refused naming both", async () => {
    const csr = nodeCsr('/CN=backend-2', 'DNS:backend-2,DNS:localhost,IP:10.40.4.20,IP:127.0.0.1');
    await expect(
      issueLeaf('backend-1', csr, entitlement('postgres-server'), intermediate, {
        validityDays: 90,
      }),
    ).rejects.toThrow(
      'backend-1: certificate request for postgres-server refused: the subject must be CN=backend-1; got CN=backend-2',
    );
  });

  test('Given a CSR with an extra address, when signed, then it is refused', async () => {
    const csr = nodeCsr(
      '/CN=backend-1',
      'DNS:backend-1,DNS:localhost,IP:10.40.3.20,IP:127.0.0.1,IP:10.40.4.20',
    );
    const error = await issueLeaf('backend-1', csr, entitlement('postgres-server'), intermediate, {
      validityDays: 90,
    }).catch((e) => e);
    expect(error).toBeInstanceOf(CsrRejectedError);
    expect(error.message).toContain(
      'got DNS [backend-1, localhost], IP [10.40.3.20, 10.40.4.20, 127.0.0.1]',
    );
  });

  test('Given an RSA key, when signed, then it is refused: P-256 only', async () => {
    const csr = nodeCsr('/CN=agent1', undefined, [
      '-algorithm',
      'RSA',
      '-pkeyopt',
      'rsa_keygen_bits:2048',
    ]);
    await expect(
      issueLeaf('backend-1', csr, entitlement('pem-agent'), intermediate, { validityDays: 90 }),
    ).rejects.toThrow('the key must be ECDSA P-256');
  });

  test('Given the agent identity, then the CN is the agent user and the certificate is for clients only', async () => {
    const chain = await issueLeaf(
      'backend-1',
      nodeCsr('/CN=agent1'),
      entitlement('pem-agent'),
      intermediate,
      { validityDays: 90 },
    );
    const leaf = new x509.X509Certificate(chain.split('\n\n')[0]);
    expect(leaf.subject).toBe('CN=agent1');
    expect(leaf.getExtension(x509.ExtendedKeyUsageExtension)!.usages).toEqual([
      '1.3.6.1.5.5.7.3.2',
    ]);
  });

  test("Given Patroni's etcd identity, when signed, then the subject is empty and the node's name is a critical SAN: etcd's gateway refuses a client certificate with a common name once its access control is on", async () => {
    const chain = await issueLeaf(
      'backend-1',
      nodeCsr('/', 'DNS:backend-1'),
      entitlement('etcd-client'),
      intermediate,
      { validityDays: 90 },
    );
    const leaf = new x509.X509Certificate(chain.split('\n\n')[0]);
    expect(leaf.subject).toBe('');
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension)!;
    expect(san.critical).toBe(true);
    expect(san.names.toJSON()).toEqual([{ type: 'dns', value: 'backend-1' }]);
  });

  test('Given an etcd-client request with a common name, when signed, then it is refused', async () => {
    await expect(
      issueLeaf(
        'backend-1',
        nodeCsr('/CN=backend-1', 'DNS:backend-1'),
        entitlement('etcd-client'),
        intermediate,
        {
          validityDays: 90,
        },
      ),
    ).rejects.toThrow(
      'backend-1: certificate request for etcd-client refused: the subject must be empty; got CN=backend-1',
    );
  });
});

describe('entitlementsOf', () => {
  test.each([
    [
      { name: 'etcd-1', tier: 'etcd' as const, address: '10.40.3.10' },
      ['etcd-server', 'etcd-peer'],
    ],
    [BACKEND, ['postgres-server', 'patroni-rest', 'pgbackrest', 'etcd-client', 'pem-agent']],
    [
      { ...BACKEND, agentId: undefined },
      ['postgres-server', 'patroni-rest', 'pgbackrest', 'etcd-client'],
    ],
    [
      { name: 'web-1', tier: 'web' as const, address: '10.40.3.30', agentId: 4 },
      ['pem-web', 'pem-agent'],
    ],
  ])('Given %o, then it may hold %p', (node, identities) => {
    expect(entitlementsOf(node).map((e) => e.identity)).toEqual(identities);
  });
});

test("Given every tier, then only the etcd members' peer certificates carry the name etcd's peer port demands", () => {
  const nodes = [
    { name: 'etcd-1', tier: 'etcd' as const, address: '10.40.3.10' },
    BACKEND,
    { name: 'web-1', tier: 'web' as const, address: '10.40.3.30', agentId: 101 },
  ];
  const naming = nodes
    .flatMap((node) => entitlementsOf(node).map((e) => ({ node: node.name, ...e })))
    .filter((e) => e.dnsNames.includes(ETCD_PEER_NAME))
    .map((e) => `${e.node}/${e.identity}`);
  expect(naming).toEqual(['etcd-1/etcd-peer']);
});

test("Given the database endpoint's name, then only the backends' PostgreSQL certificates carry it, in lower case", () => {
  const cluster = { databaseEndpointName: 'PemHa-Endpo-ABC.elb.eu-west-1.amazonaws.com' };
  const named = [BACKEND, { name: 'etcd-1', tier: 'etcd' as const, address: '10.40.3.10' }]
    .flatMap((node) => entitlementsOf(node, cluster))
    .filter((e) => e.dnsNames.some((name) => name.includes('elb')));
  expect(named.map((e) => [e.identity, e.dnsNames])).toEqual([
    ['postgres-server', [BACKEND.name, 'localhost', 'pemha-endpo-abc.elb.eu-west-1.amazonaws.com']],
  ]);
});

test('parseCsrBlocks finds the CSRs between log lines', () => {
  const csr = nodeCsr('/CN=etcd-1');
  const blocks = parseCsrBlocks(
    `[pem-ha 10:00:00] etcd-server: no certificate yet\ncsr=etcd-server\n${csr}[pem-ha] done\n`,
  );
  expect([...blocks.keys()]).toEqual(['etcd-server']);
  expect(blocks.get('etcd-server')).toBe(csr.trim());
});
