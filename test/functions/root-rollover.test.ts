import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { ensureClusterCa, splitPem } from '../../functions/lib/ca-store';
import { createIntermediateCa, createRootCa, isIssuedBy } from '../../functions/lib/pki';
import { publishRoots } from '../../functions/lib/roots-parameter';
import {
  beginRootRollover,
  finishRootRollover,
  RootRolloverStateError,
} from '../../functions/lib/root-rollover';
import { CA_SECRETS, inMemoryCaSecrets } from '../helpers/ca-secrets';

const secrets = mockClient(SecretsManagerClient);
const client = new SecretsManagerClient({ region: 'eu-west-1' });
const CA = CA_SECRETS;
let values: Map<string, string>;
const stored = (id: string) => JSON.parse(values.get(id)!);
const bundleOf = (step: { bundle: string }) =>
  JSON.parse(Buffer.from(step.bundle, 'base64').toString());

beforeEach(async () => {
  secrets.reset();
  values = inMemoryCaSecrets(secrets);
  await ensureClusterCa(client, CA);
});

describe('root rollover', () => {
  test('Given a cluster CA, when a rollover begins, then both roots are trusted and the new issuing CA comes from the new root', async () => {
    const oldRoot = stored(CA.rootSecretId).certificatePem;

    const step = await beginRootRollover(client, CA);

    const newRoot = stored(CA.rootSecretId).certificatePem;
    expect(newRoot).not.toBe(oldRoot);
    expect(stored(CA.trustSecretId).roots).toEqual([oldRoot, newRoot]);
    const intermediate = stored(CA.intermediateSecretId);
    expect(await isIssuedBy(intermediate.certificatePem, newRoot)).toBe(true);
    // What the signer sends to nodes as their trust file: both roots.
    expect(splitPem(intermediate.rootCertificatePem).map((p) => p.trim())).toEqual([
      oldRoot.trim(),
      newRoot.trim(),
    ]);
    expect(splitPem(bundleOf(step).root)).toHaveLength(2);
    expect(bundleOf(step).certificates).toEqual({});
    expect(values.get(CA.trustSecretId)).not.toContain('PRIVATE KEY');
  });

  test('Given a rollover in progress, when begun again, then it resumes without a third root', async () => {
    await beginRootRollover(client, CA);
    const snapshot = new Map(values);

    await beginRootRollover(client, CA);

    expect(values).toEqual(snapshot);
  });

  test('Given a rollover interrupted before the new issuing CA was stored, when begun again, then only the issuing CA is made', async () => {
    await beginRootRollover(client, CA);
    const root = values.get(CA.rootSecretId);
    const trustRoots = stored(CA.trustSecretId).roots;
    // An issuing CA not from the new root, as if the run stopped before storing the new one.
    values.set(
      CA.intermediateSecretId,
      JSON.stringify({ ...stored(CA.intermediateSecretId), ...(await foreignIssuingCa()) }),
    );

    await beginRootRollover(client, CA);

    expect(values.get(CA.rootSecretId)).toBe(root);
    expect(stored(CA.trustSecretId).roots).toEqual(trustRoots);
    expect(await isIssuedBy(stored(CA.intermediateSecretId).certificatePem, trustRoots[1])).toBe(
      true,
    );
  });

  test('Given a finished reissue, when the rollover finishes, then only the new root is trusted and signed for', async () => {
    await beginRootRollover(client, CA);
    const newRoot = stored(CA.rootSecretId).certificatePem;

    const step = await finishRootRollover(client, CA);

    expect(stored(CA.trustSecretId).roots).toEqual([newRoot]);
    expect(stored(CA.intermediateSecretId).rootCertificatePem.trim()).toBe(newRoot.trim());
    expect(splitPem(bundleOf(step).root)).toHaveLength(1);
  });

  test('Given no CA, then the rollover refuses to begin and changes nothing', async () => {
    values.set(CA.trustSecretId, '{}');
    const snapshot = new Map(values);
    await expect(beginRootRollover(client, CA)).rejects.toThrow(RootRolloverStateError);
    expect(values).toEqual(snapshot);
  });
});

/** An issuing CA of another root (its pair only). */
async function foreignIssuingCa() {
  const root = await createRootCa({ commonName: 'other root', validityDays: 30 });
  const { certificatePem, privateKeyPem } = await createIntermediateCa(root, {
    commonName: 'other issuing CA',
    validityDays: 30,
  });
  return { certificatePem, privateKeyPem };
}

describe('the roots clients fetch (SSM parameter)', () => {
  const ssm = mockClient(SSMClient);
  const ssmClient = new SSMClient({ region: 'eu-west-1' });
  const NAME = '/pem-ha/pki/root-certificates';
  let parameter: string | undefined;
  let puts: number;
  beforeEach(() => {
    ssm.reset();
    parameter = undefined;
    puts = 0;
    ssm.on(GetParameterCommand).callsFake(() => {
      if (parameter === undefined)
        throw Object.assign(new Error('not found'), { name: 'ParameterNotFound' });
      return { Parameter: { Name: NAME, Value: parameter.trim() } };
    });
    ssm.on(PutParameterCommand).callsFake(({ Value, Type, Overwrite }) => {
      expect({ Type, Overwrite }).toEqual({ Type: 'String', Overwrite: true });
      parameter = Value;
      puts++;
      return { Version: puts };
    });
  });
  const publish = () => publishRoots(ssmClient, client, CA.trustSecretId, NAME);
  const rootsIn = (pem: string | undefined) => splitPem(pem ?? '').length;

  test('Given a new CA, then its root is published; published again unchanged, nothing is written', async () => {
    expect(await publish()).toEqual({ parameterName: NAME, roots: 1, changed: true });
    expect(parameter).toContain(stored(CA.trustSecretId).roots[0].trim());
    expect(parameter).not.toContain('PRIVATE KEY');
    expect(await publish()).toMatchObject({ changed: false });
    expect(puts).toBe(1);
  });

  test('Given a root rollover, then clients are offered both roots while it runs and the new one only once it ends', async () => {
    await publish();
    const oldRoot = stored(CA.trustSecretId).roots[0].trim();
    await beginRootRollover(client, CA);
    expect(await publish()).toMatchObject({ roots: 2, changed: true });
    expect(rootsIn(parameter)).toBe(2);
    await finishRootRollover(client, CA);
    expect(await publish()).toMatchObject({ roots: 1, changed: true });
    expect(parameter).not.toContain(oldRoot);
  });
});
