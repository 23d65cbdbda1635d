import type { webcrypto } from 'node:crypto';
import { ErrorName, PemHaError } from './errors';
import type { Tier } from './inventory';
import {
  ECDSA_SHA256,
  newKeyPair,
  privateKeyPem,
  randomSerial,
  signingKeyOf,
  validity,
  x509,
} from './x509';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SUBJECT_ALT_NAME_OID = '2.5.29.17';

/** A CA certificate and its key (PKCS#8 PEM): the secret value the CA is stored as. */
export interface CaMaterial {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

export type Identity =
  | 'etcd-server'
  | 'etcd-peer'
  | 'etcd-client'
  | 'postgres-server'
  | 'patroni-rest'
  | 'pgbackrest'
  | 'pem-agent'
  | 'pem-web';

/**
 * The DNS name etcd demands of its peers (`--peer-cert-allowed-hostname`):
 * only the members' peer certificates carry it, so no other certificate the
 * cluster CA signed (a PEM agent's, pgBackRest's, etcd's own server one) can
 * join or speak raft.
 */
export const ETCD_PEER_NAME = 'pem-ha-etcd-peer';

/** What a node may hold certificates for: derived from the inventory, never from a CSR. */
export interface NodeFacts {
  readonly name: string;
  readonly tier: Tier;
  readonly address: string;
  /** PEM agent number (agent<N> is the agent's database user), when PEM is enabled. */
  readonly agentId?: number;
}

export interface Entitlement {
  readonly identity: Identity;
  /**
   * The subject's common name; absent for an empty subject (named by its
   * SANs only): etcd refuses any client certificate with a common name on its
   * JSON gateway, which Patroni uses, once etcd's access control is on.
   */
  readonly commonName?: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly extendedKeyUsages: readonly string[];
}

/** A CSR does not match what its node is entitled to; nothing is signed. */
export class CsrRejectedError extends PemHaError {
  constructor(node: string, identity: string, reason: string) {
    super(ErrorName.CsrRejected, `${node}: certificate request for ${identity} refused: ${reason}`);
  }
}

/** What the cluster adds to the nodes' own names. */
export interface ClusterNames {
  /**
   * The database endpoint's DNS name (the NLB's): backends' PostgreSQL
   * certificates carry it, so clients verify the endpoint (`verify-full`).
   */
  readonly databaseEndpointName?: string;
}

/** The identities of a node, with the names and uses each certificate carries. */
export function entitlementsOf(node: NodeFacts, cluster: ClusterNames = {}): Entitlement[] {
  const server = (identity: Identity, uses = [SERVER_AUTH], names: string[] = []): Entitlement => ({
    identity,
    commonName: node.name,
    dnsNames: [node.name, 'localhost', ...names],
    ipAddresses: [node.address, '127.0.0.1'],
    extendedKeyUsages: uses,
  });
  const client = (identity: Identity, commonName: string): Entitlement => ({
    identity,
    commonName,
    dnsNames: [],
    ipAddresses: [],
    extendedKeyUsages: [CLIENT_AUTH],
  });
  // Patroni logs in to etcd by password (its role reaches only its cluster's
  // keys); the certificate only gets it through the TLS handshake.
  const etcdClient: Entitlement = {
    identity: 'etcd-client',
    dnsNames: [node.name],
    ipAddresses: [],
    extendedKeyUsages: [CLIENT_AUTH],
  };
  const agent = node.agentId === undefined ? [] : [client('pem-agent', `agent${node.agentId}`)];
  switch (node.tier) {
    case 'etcd':
      // etcd's gRPC gateway dials its own client port with the server certificate.
      return [
        server('etcd-server', [SERVER_AUTH, CLIENT_AUTH]),
        server('etcd-peer', [SERVER_AUTH, CLIENT_AUTH], [ETCD_PEER_NAME]),
      ];
    case 'backend':
      return [
        server(
          'postgres-server',
          [SERVER_AUTH],
          cluster.databaseEndpointName ? [cluster.databaseEndpointName.toLowerCase()] : [],
        ),
        server('patroni-rest'),
        // pgBackRest's TLS server and its clients (the other backends) present the same one.
        server('pgbackrest', [SERVER_AUTH, CLIENT_AUTH]),
        etcdClient,
        ...agent,
      ];
    case 'web':
      return [server('pem-web'), ...agent];
  }
}

/** Whether `childPem` carries a valid signature of `issuerPem`'s key. */
export async function isIssuedBy(childPem: string, issuerPem: string): Promise<boolean> {
  const issuer = new x509.X509Certificate(issuerPem);
  return new x509.X509Certificate(childPem).verify({
    publicKey: await issuer.publicKey.export(),
    signatureOnly: true,
  });
}

/** When a PEM certificate expires. */
export function notAfterOf(certificatePem: string): Date {
  return new x509.X509Certificate(certificatePem).notAfter;
}

/** The `csr=<identity>` blocks the certificates document prints on request. */
export function parseCsrBlocks(stdout: string): Map<string, string> {
  const blocks = new Map<string, string>();
  const pattern =
    /^csr=([a-z-]+)\n(-----BEGIN CERTIFICATE REQUEST-----\n[\s\S]*?\n-----END CERTIFICATE REQUEST-----)$/gm;
  for (const [, identity, pem] of stdout.matchAll(pattern)) blocks.set(identity, pem);
  return blocks;
}

interface CaParams {
  readonly commonName: string;
  readonly validityDays: number;
  readonly now?: Date;
}

/** A self-signed root that can sign intermediates (pathLen 1) and nothing else directly. */
export async function createRootCa(params: CaParams): Promise<CaMaterial> {
  const keys = await newKeyPair();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${params.commonName}`,
    ...validity(params.now ?? new Date(), params.validityDays),
    signingAlgorithm: ECDSA_SHA256,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    certificatePem: certificate.toString('pem'),
    privateKeyPem: await privateKeyPem(keys.privateKey),
  };
}

/** The issuing CA (pathLen 0): leaves are signed with it and served with it. */
export async function createIntermediateCa(
  root: CaMaterial,
  params: CaParams,
): Promise<CaMaterial> {
  const rootCertificate = new x509.X509Certificate(root.certificatePem);
  const keys = await newKeyPair();
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${params.commonName}`,
    issuer: rootCertificate.subject,
    ...validity(params.now ?? new Date(), params.validityDays, rootCertificate.notAfter),
    signingAlgorithm: ECDSA_SHA256,
    publicKey: keys.publicKey,
    signingKey: await signingKeyOf(root.privateKeyPem),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(rootCertificate),
    ],
  });
  return {
    certificatePem: certificate.toString('pem'),
    privateKeyPem: await privateKeyPem(keys.privateKey),
  };
}

const subjectOf = (wanted: Entitlement) => (wanted.commonName ? `CN=${wanted.commonName}` : '');

const sorted = (values: readonly string[]) => [...values].sort().join(', ') || 'none';

/** Checks a CSR against the entitlement: signature, key type, subject and SANs. */
async function checkCsr(node: string, csr: x509.Pkcs10CertificateRequest, wanted: Entitlement) {
  const refuse = (reason: string) => new CsrRejectedError(node, wanted.identity, reason);
  if (!(await csr.verify())) throw refuse('its signature does not verify');
  const algorithm = csr.publicKey.algorithm as webcrypto.EcKeyAlgorithm;
  if (algorithm.name !== 'ECDSA' || algorithm.namedCurve !== 'P-256') {
    throw refuse(
      `the key must be ECDSA P-256; got ${algorithm.name} ${algorithm.namedCurve ?? ''}`.trim(),
    );
  }
  if (csr.subject !== subjectOf(wanted)) {
    throw refuse(
      `the subject must be ${subjectOf(wanted) || 'empty'}; got ${csr.subject || 'empty'}`,
    );
  }
  // The CSR API only looks extensions up by OID string, untyped.
  const san = csr.getExtension(SUBJECT_ALT_NAME_OID) as x509.SubjectAlternativeNameExtension | null;
  const names = san?.names.toJSON() ?? [];
  const dns = names.filter((n) => n.type === 'dns').map((n) => n.value);
  const ips = names.filter((n) => n.type === 'ip').map((n) => n.value);
  const others = names.filter((n) => n.type !== 'dns' && n.type !== 'ip');
  if (
    sorted(dns) !== sorted(wanted.dnsNames) ||
    sorted(ips) !== sorted(wanted.ipAddresses) ||
    others.length
  ) {
    throw refuse(
      `the names must be DNS [${sorted(wanted.dnsNames)}] and IP [${sorted(wanted.ipAddresses)}]; ` +
        `got DNS [${sorted(dns)}], IP [${sorted(ips)}]${others.length ? ' and other names' : ''}`,
    );
  }
}

export interface IssueParams {
  readonly validityDays: number;
  readonly now?: Date;
}

/** Signs a checked CSR with the intermediate: the leaf + intermediate chain a node serves. */
export async function issueLeaf(
  node: string,
  csrPem: string,
  wanted: Entitlement,
  intermediate: CaMaterial,
  params: IssueParams,
): Promise<string> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (error) {
    throw new CsrRejectedError(
      node,
      wanted.identity,
      `it is not a PKCS#10 request (${(error as Error).message})`,
    );
  }
  await checkCsr(node, csr, wanted);
  const issuer = new x509.X509Certificate(intermediate.certificatePem);
  const subjectNames = [
    ...wanted.dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...wanted.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
  ];
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: subjectOf(wanted),
    issuer: issuer.subject,
    ...validity(params.now ?? new Date(), params.validityDays, issuer.notAfter),
    signingAlgorithm: ECDSA_SHA256,
    publicKey: csr.publicKey,
    signingKey: await signingKeyOf(intermediate.privateKeyPem),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([...wanted.extendedKeyUsages]),
      // Critical when they are the only names (RFC 5280, 4.2.1.6).
      ...(subjectNames.length
        ? [new x509.SubjectAlternativeNameExtension(subjectNames, !wanted.commonName)]
        : []),
      await x509.SubjectKeyIdentifierExtension.create(csr.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(issuer),
    ],
  });
  return `${leaf.toString('pem')}\n${issuer.toString('pem')}\n`;
}
