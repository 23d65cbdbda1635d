import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { createHash, X509Certificate } from 'node:crypto';
import { CaMaterial, createIntermediateCa, createRootCa } from './pki';
import { ErrorName, PemHaError } from './errors';

/**
 * The issuing CA as stored: its pair and what every trust file holds (the
 * root; during a root rollover the old and the new root, concatenated).
 */
export interface StoredIntermediate extends CaMaterial {
  readonly rootCertificatePem: string;
}

/** The CA secrets hold `{}` until the CA exists; anything else must be a complete pair. */
async function readJson<T extends object>(
  secrets: SecretsManagerClient,
  secretId: string,
  fields: readonly (keyof T & string)[],
): Promise<T | undefined> {
  const { SecretString } = await secrets.send(new GetSecretValueCommand({ SecretId: secretId }));
  return parseJson<T>(secretId, SecretString, fields);
}

function parseJson<T extends object>(
  secretId: string,
  secretString: string | undefined,
  fields: readonly (keyof T & string)[],
): T | undefined {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(secretString ?? '{}');
  } catch {
    throw new Error(`secret ${secretId} does not hold JSON`);
  }
  if (Object.keys(value).length === 0) return undefined;
  const missing = fields.filter((field) => typeof value[field] !== 'string');
  if (missing.length > 0) throw new Error(`secret ${secretId} lacks ${missing.join(', ')}`);
  return value as T;
}

/** The root pair, or undefined before the CA exists. */
export async function readRoot(
  secrets: SecretsManagerClient,
  secretId: string,
): Promise<CaMaterial | undefined> {
  return readJson<CaMaterial>(secrets, secretId, ['certificatePem', 'privateKeyPem']);
}

export async function readIntermediate(
  secrets: SecretsManagerClient,
  secretId: string,
): Promise<StoredIntermediate | undefined> {
  return readJson<StoredIntermediate>(secrets, secretId, [
    'certificatePem',
    'privateKeyPem',
    'rootCertificatePem',
  ]);
}

/** The public half of the PKI: what clients of the cluster trust and what the issuer serves. */
export interface StoredTrust {
  /** Every root a node's trust file holds (two only during a root rollover). */
  readonly roots: readonly string[];
  readonly intermediateCertificatePem: string;
}

export async function readTrust(
  secrets: SecretsManagerClient,
  secretId: string,
): Promise<StoredTrust | undefined> {
  const { SecretString } = await secrets.send(new GetSecretValueCommand({ SecretId: secretId }));
  return parseTrust(secretId, SecretString);
}

/** The trust secret's value fetched elsewhere (a cache), checked as {@link readTrust} checks it. */
export function parseTrust(
  secretId: string,
  secretString: string | undefined,
): StoredTrust | undefined {
  const trust = parseJson<StoredTrust>(secretId, secretString, ['intermediateCertificatePem']);
  if (trust && (!Array.isArray(trust.roots) || trust.roots.length === 0)) {
    throw new Error(`secret ${secretId} lacks roots`);
  }
  return trust;
}

export interface ClusterCaSettings {
  readonly rootSecretId: string;
  readonly intermediateSecretId: string;
  /** Where the public certificates go for readers that must not see any key. */
  readonly trustSecretId: string;
  readonly clusterName: string;
  /** @default 3650 */
  readonly rootValidityDays?: number;
  /** @default 1825 */
  readonly intermediateValidityDays?: number;
}

/** The roots a node trusts, as its preparation reported them (SHA-256 of each DER, hex). */
export interface NodeTrust {
  readonly node: string;
  readonly roots: readonly string[];
}

/** A root certificate's SHA-256 fingerprint as the nodes report it: lowercase hex, no colons. */
export function rootFingerprint(certificatePem: string): string {
  return createHash('sha256').update(new X509Certificate(certificatePem).raw).digest('hex');
}

/**
 * Makes the cluster's root and issuing CA once; later calls find them and
 * change nothing. Refuses while the trust secret, or any node in
 * `nodeTrust`, trusts a root the new issuing CA would not chain to. Returns
 * the root certificate (public).
 */
export async function ensureClusterCa(
  secrets: SecretsManagerClient,
  settings: ClusterCaSettings,
  nodeTrust: readonly NodeTrust[] = [],
): Promise<{ readonly rootCertificatePem: string; readonly created: boolean }> {
  const existing = await readIntermediate(secrets, settings.intermediateSecretId);
  if (existing) {
    // A CA made before the trust secret existed gets it filled in once.
    if (!(await readTrust(secrets, settings.trustSecretId))) {
      await writeTrust(secrets, settings.trustSecretId, {
        roots: splitPem(existing.rootCertificatePem),
        intermediateCertificatePem: existing.certificatePem,
      });
    }
    return { rootCertificatePem: existing.rootCertificatePem, created: false };
  }

  let root = await readRoot(secrets, settings.rootSecretId);
  // Nodes and clients trust these roots: an issuing CA made now must chain to one of them.
  const trusted = await readTrust(secrets, settings.trustSecretId);
  if (
    trusted &&
    !(root && trusted.roots.some((pem) => pem.trim() === root!.certificatePem.trim()))
  ) {
    throw new ClusterTrustExistsError(settings, trusted.roots.length, root !== undefined);
  }
  const kept = root && rootFingerprint(root.certificatePem);
  const strangers = nodeTrust.filter(
    (node) => node.roots.length > 0 && !(kept && node.roots.includes(kept)),
  );
  if (strangers.length > 0) throw new NodeTrustExistsError(settings, strangers, root !== undefined);
  if (!root) {
    root = await createRootCa({
      commonName: `${settings.clusterName} root CA`,
      validityDays: settings.rootValidityDays ?? 3650,
    });
    await secrets.send(
      new PutSecretValueCommand({
        SecretId: settings.rootSecretId,
        SecretString: JSON.stringify(root),
      }),
    );
  }
  const intermediate = await createIntermediateCa(root, {
    commonName: `${settings.clusterName} issuing CA`,
    validityDays: settings.intermediateValidityDays ?? 1825,
  });
  const stored: StoredIntermediate = { ...intermediate, rootCertificatePem: root.certificatePem };
  await secrets.send(
    new PutSecretValueCommand({
      SecretId: settings.intermediateSecretId,
      SecretString: JSON.stringify(stored),
    }),
  );
  await writeTrust(secrets, settings.trustSecretId, {
    roots: [root.certificatePem],
    intermediateCertificatePem: intermediate.certificatePem,
  });
  return { rootCertificatePem: root.certificatePem, created: true };
}

export async function writeTrust(
  secrets: SecretsManagerClient,
  secretId: string,
  trust: StoredTrust,
): Promise<void> {
  await secrets.send(
    new PutSecretValueCommand({ SecretId: secretId, SecretString: JSON.stringify(trust) }),
  );
}

/** The certificates of a PEM bundle, each with its own END line. */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [];
}

/** The CA has not been made yet: the flow must run its CA step first. */
export class ClusterCaMissingError extends PemHaError {
  constructor(secretId: string) {
    super(ErrorName.ClusterCaMissing, `the cluster CA in ${secretId} does not exist yet`);
  }
}

/**
 * The issuing CA is gone but the trust secret still lists the roots every
 * node and client trusts: a new root would be trusted by none of them.
 */
export class ClusterTrustExistsError extends PemHaError {
  constructor(settings: ClusterCaSettings, roots: number, otherRoot: boolean) {
    super(
      ErrorName.ClusterTrustExists,
      `the issuing CA secret ${settings.intermediateSecretId} is empty, but the trust secret ${settings.trustSecretId} ` +
        `lists ${roots} root(s) that the nodes and their clients trust, and the root secret ${settings.rootSecretId} ` +
        `holds ${otherRoot ? 'a root it does not list' : 'none'}: a new CA would be trusted by nothing in the cluster, ` +
        'so none was made and nothing changed. To recover, put the root and issuing CA back in their secrets ' +
        '(aws secretsmanager restore-secret within the recovery window, or from your backup) and run the bootstrap ' +
        `again. To start a new CA on purpose, put {} in ${settings.trustSecretId} as well: the next bootstrap gives ` +
        'every node the new root, and every client must be given it.',
    );
  }
}

/**
 * The CA secrets are empty (or hold another root) but nodes still trust the
 * cluster's roots: a new root would be trusted by none of them.
 */
export class NodeTrustExistsError extends PemHaError {
  constructor(settings: ClusterCaSettings, nodes: readonly NodeTrust[], otherRoot: boolean) {
    const listed = nodes
      .map((n) => `${n.node} (${n.roots.map((fp) => fp.slice(0, 16)).join(', ')})`)
      .join('; ');
    super(
      ErrorName.NodeTrustExists,
      `the issuing CA secret ${settings.intermediateSecretId} is empty and the root secret ${settings.rootSecretId} ` +
        `holds ${otherRoot ? 'a root these nodes do not trust' : 'none'}, but ${nodes.length} node(s) trust ` +
        `other roots (SHA-256): ${listed}. A new CA would be trusted by none of them, so none was made and ` +
        'nothing changed. To recover, put the root and issuing CA back in their secrets (aws secretsmanager ' +
        'restore-secret within the recovery window, or from your backup) and run the bootstrap again. Only if ' +
        'the CA is lost for good: move /etc/pem-ha/tls aside on each node listed (its services fail TLS until ' +
        'the bootstrap has reissued their certificates), run the bootstrap, and give every client the new root ' +
        `(output RootCertificatesParameter).`,
    );
  }
}
