/**
 * The roots clients verify the cluster with, published where any client of
 * the account can fetch them (`aws ssm get-parameter`): an SSM String
 * parameter, certificates only. The trust secret stays the source: this
 * copies its roots after every change the CA function makes.
 */
import { GetParameterCommand, PutParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { readTrust } from './ca-store';

export interface PublishedRoots {
  readonly parameterName: string;
  /** How many roots the parameter holds (two only during a root rollover). */
  readonly roots: number;
  /** False when the parameter already held exactly these roots. */
  readonly changed: boolean;
}

/** Writes the trust secret's roots to `parameterName`, one PEM block after another. */
export async function publishRoots(
  ssm: SSMClient,
  secrets: SecretsManagerClient,
  trustSecretId: string,
  parameterName: string,
): Promise<PublishedRoots> {
  const trust = await readTrust(secrets, trustSecretId);
  if (!trust) throw new Error(`the trust secret ${trustSecretId} holds no roots to publish yet`);
  const value = trust.roots.map((pem) => `${pem.trim()}\n`).join('');
  let current: string | undefined;
  try {
    const { Parameter } = await ssm.send(new GetParameterCommand({ Name: parameterName }));
    current = Parameter?.Value;
  } catch (error) {
    if ((error as Error).name !== 'ParameterNotFound') throw error;
  }
  // SSM trims a value's trailing newline.
  if (current?.trim() === value.trim()) {
    return { parameterName, roots: trust.roots.length, changed: false };
  }
  await ssm.send(
    new PutParameterCommand({
      Name: parameterName,
      Value: value,
      Type: 'String',
      Overwrite: true,
      Description: 'Root certificates of the cluster CA (written by pem-ha; no key)',
    }),
  );
  return { parameterName, roots: trust.roots.length, changed: true };
}
