import { PutSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import {
  ClusterCaSettings,
  readIntermediate,
  readRoot,
  readTrust,
  StoredIntermediate,
  writeTrust,
} from './ca-store';
import { createIntermediateCa, createRootCa, isIssuedBy } from './pki';
import { ErrorName, PemHaError } from './errors';

/** What the nodes install in a trust-only step: base64 JSON `{ root, certificates: {} }`. */
export interface TrustStep {
  readonly bundle: string;
  readonly roots: number;
}

/** The rollover cannot go on from the state the secrets are in; nothing was changed. */
export class RootRolloverStateError extends PemHaError {
  constructor(detail: string) {
    super(ErrorName.RootRolloverState, `root rollover: ${detail}`);
  }
}

const trustStep = (roots: readonly string[]): TrustStep => ({
  bundle: Buffer.from(
    JSON.stringify({ root: roots.map((pem) => `${pem.trim()}\n`).join(''), certificates: {} }),
  ).toString('base64'),
  roots: roots.length,
});

async function put(secrets: SecretsManagerClient, secretId: string, value: unknown) {
  await secrets.send(
    new PutSecretValueCommand({ SecretId: secretId, SecretString: JSON.stringify(value) }),
  );
}

/**
 * First half of a root rollover: a new root, a new issuing CA under it, and
 * trust in both roots. Run again, it finds the rollover in progress and
 * finishes what is missing instead of starting another one.
 */
export async function beginRootRollover(
  secrets: SecretsManagerClient,
  settings: ClusterCaSettings,
  now = new Date(),
): Promise<TrustStep> {
  const trust = await readTrust(secrets, settings.trustSecretId);
  let root = await readRoot(secrets, settings.rootSecretId);
  if (!trust || !root) throw new RootRolloverStateError('the cluster CA does not exist yet');
  let roots = [...trust.roots];
  if (roots.length === 1) {
    root = await createRootCa({
      commonName: `${settings.clusterName} root CA ${now.toISOString().slice(0, 10)}`,
      validityDays: settings.rootValidityDays ?? 3650,
      now,
    });
    // The old root's key signs nothing from here on: it is not kept.
    await put(secrets, settings.rootSecretId, root);
    roots = [roots[0], root.certificatePem];
    await writeTrust(secrets, settings.trustSecretId, {
      roots,
      intermediateCertificatePem: trust.intermediateCertificatePem,
    });
  } else if (roots[roots.length - 1].trim() !== root.certificatePem.trim()) {
    throw new RootRolloverStateError('the newest trusted root is not the stored root');
  }
  const intermediate = await readIntermediate(secrets, settings.intermediateSecretId);
  if (!intermediate || !(await isIssuedBy(intermediate.certificatePem, root.certificatePem))) {
    const issuing = await createIntermediateCa(root, {
      commonName: `${settings.clusterName} issuing CA ${now.toISOString().slice(0, 10)}`,
      validityDays: settings.intermediateValidityDays ?? 1825,
      now,
    });
    const stored: StoredIntermediate = {
      ...issuing,
      rootCertificatePem: roots.map((pem) => `${pem.trim()}\n`).join(''),
    };
    await put(secrets, settings.intermediateSecretId, stored);
    await writeTrust(secrets, settings.trustSecretId, {
      roots,
      intermediateCertificatePem: issuing.certificatePem,
    });
  }
  return trustStep(roots);
}

/** Second half, once every leaf comes from the new root: trust in the new root only. */
export async function finishRootRollover(
  secrets: SecretsManagerClient,
  settings: ClusterCaSettings,
): Promise<TrustStep> {
  const root = await readRoot(secrets, settings.rootSecretId);
  const intermediate = await readIntermediate(secrets, settings.intermediateSecretId);
  if (!root || !intermediate) throw new RootRolloverStateError('the cluster CA does not exist yet');
  if (!(await isIssuedBy(intermediate.certificatePem, root.certificatePem))) {
    throw new RootRolloverStateError(
      'the issuing CA does not come from the stored root; start the rollover from the beginning',
    );
  }
  await put(secrets, settings.intermediateSecretId, {
    ...intermediate,
    rootCertificatePem: `${root.certificatePem.trim()}\n`,
  });
  await writeTrust(secrets, settings.trustSecretId, {
    roots: [root.certificatePem],
    intermediateCertificatePem: intermediate.certificatePem,
  });
  return trustStep([root.certificatePem]);
}
