import { execFileSync } from 'node:child_process';
import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { AwsClientStub } from 'aws-sdk-client-mock';

/** The CA secrets' names, as the stack names them for cluster pem-ha. */
export const CA_SECRETS = {
  clusterName: 'pem-ha',
  rootSecretId: 'pem-ha/pki/root',
  intermediateSecretId: 'pem-ha/pki/intermediate',
  trustSecretId: 'pem-ha/pki/trust',
};

/**
 * Makes the mocked Secrets Manager an in-memory store holding the CA secrets
 * as CloudFormation leaves them (`{}`); returns the values, by secret id.
 */
export function inMemoryCaSecrets(
  secrets: AwsClientStub<SecretsManagerClient>,
): Map<string, string> {
  const values = new Map(
    [CA_SECRETS.rootSecretId, CA_SECRETS.intermediateSecretId, CA_SECRETS.trustSecretId].map(
      (id) => [id, '{}'],
    ),
  );
  secrets
    .on(GetSecretValueCommand)
    .callsFake(({ SecretId }) => ({ SecretString: values.get(SecretId) }));
  secrets.on(PutSecretValueCommand).callsFake(({ SecretId, SecretString }) => {
    values.set(SecretId, SecretString);
    return {};
  });
  return values;
}

/**
 * A P-256 key and CSR made with openssl as a node or an agent's host makes
 * them; the key goes to `keyOut` (default: dropped, when only the CSR matters).
 */
export function opensslCsr(
  subject: string,
  { sans, keyOut = '/dev/null' }: { sans?: string; keyOut?: string } = {},
): string {
  return execFileSync(
    'openssl',
    [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      keyOut,
      '-subj',
      subject,
      ...(sans ? ['-addext', `subjectAltName=${sans}`] : []),
    ],
    { encoding: 'utf8' },
  );
}
