import { execFileSync } from 'node:child_process';
import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { GetCommandInvocationCommand, SSMClient } from '@aws-sdk/client-ssm';
import * as x509 from '@peculiar/x509';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { ensureClusterCa, rootFingerprint } from '../../functions/lib/ca-store';
import { createRootCa } from '../../functions/lib/pki';
import { ClusterCaMissingError } from '../../functions/lib/ca-store';
import { signNodeRequests } from '../../functions/sign-certificates/sign';
import { CA_SECRETS, inMemoryCaSecrets, opensslCsr } from '../helpers/ca-secrets';

const secrets = mockClient(SecretsManagerClient);
const ssm = mockClient(SSMClient);
const secretsClient = new SecretsManagerClient({ region: 'eu-west-1' });
const ssmClient = new SSMClient({ region: 'eu-west-1' });
const CA = CA_SECRETS;
/** An in-memory Secrets Manager holding the CA secrets as CloudFormation leaves them: `{}`. */
const secretStore = () => inMemoryCaSecrets(secrets);

beforeEach(() => {
  secrets.reset();
  ssm.reset();
});

describe('ensureClusterCa', () => {
  test('Given empty CA secrets, when ensured twice, then the CA is made once and kept', async () => {
    const values = secretStore();
    const first = await ensureClusterCa(secretsClient, CA);
    const stored = values.get(CA.intermediateSecretId);
    const second = await ensureClusterCa(secretsClient, CA);

    expect(first.created).toBe(true);
    expect(second).toEqual({ rootCertificatePem: first.rootCertificatePem, created: false });
    expect(values.get(CA.intermediateSecretId)).toBe(stored);
    expect(secrets).toHaveReceivedCommandTimes(PutSecretValueCommand, 3);
    expect(JSON.parse(values.get(CA.rootSecretId)!).certificatePem).toBe(first.rootCertificatePem);
  });

  test('Given the CA, then the trust secret holds the root and the intermediate certificate and no key', async () => {
    const values = secretStore();
    const { rootCertificatePem } = await ensureClusterCa(secretsClient, CA);

    const trust = JSON.parse(values.get(CA.trustSecretId)!);
    expect(trust.roots).toEqual([rootCertificatePem]);
    expect(trust.intermediateCertificatePem).toBe(
      JSON.parse(values.get(CA.intermediateSecretId)!).certificatePem,
    );
    expect(values.get(CA.trustSecretId)).not.toContain('PRIVATE KEY');
  });

  test('Given a CA made before the trust secret existed, when ensured, then only the trust secret is filled in', async () => {
    const values = secretStore();
    await ensureClusterCa(secretsClient, CA);
    const intermediate = values.get(CA.intermediateSecretId);
    values.set(CA.trustSecretId, '{}');

    const again = await ensureClusterCa(secretsClient, CA);

    expect(again.created).toBe(false);
    expect(values.get(CA.intermediateSecretId)).toBe(intermediate);
    expect(JSON.parse(values.get(CA.trustSecretId)!).roots).toEqual([again.rootCertificatePem]);
  });

  test.each([
    ['both CA secrets emptied', [CA.rootSecretId, CA.intermediateSecretId], 'holds none'],
    ['the root replaced by another', [CA.intermediateSecretId], 'holds a root it does not list'],
  ])(
    'Given the trust secret still listing the root and %s, then no CA is made, nothing changes, and the error says how to recover',
    async (_case, emptied, rootState) => {
      const values = secretStore();
      await ensureClusterCa(secretsClient, CA);
      for (const id of emptied) values.set(id, '{}');
      if (!emptied.includes(CA.rootSecretId)) {
        // Another root, as a second stack or a hand-made CA would leave it.
        values.set(
          CA.rootSecretId,
          JSON.stringify(await createRootCa({ commonName: 'other', validityDays: 30 })),
        );
      }
      const before = new Map(values);
      secrets.resetHistory();

      const error = await ensureClusterCa(secretsClient, CA).then(
        () => undefined,
        (e: Error) => e,
      );

      expect(error?.name).toBe('ClusterTrustExistsError');
      expect(error?.message).toContain(
        `the issuing CA secret ${CA.intermediateSecretId} is empty, but the trust secret ${CA.trustSecretId} lists 1 root(s)`,
      );
      expect(error?.message).toContain(`the root secret ${CA.rootSecretId} ${rootState}`);
      expect(error?.message).toContain('aws secretsmanager restore-secret');
      expect(error?.message).toContain(`put {} in ${CA.trustSecretId} as well`);
      expect(secrets).not.toHaveReceivedCommand(PutSecretValueCommand);
      expect(values).toEqual(before);
    },
  );

  test('Given the root and the trust secret but the issuing CA emptied, then a new issuing CA is made under the same root', async () => {
    const values = secretStore();
    const { rootCertificatePem } = await ensureClusterCa(secretsClient, CA);
    values.set(CA.intermediateSecretId, '{}');

    const again = await ensureClusterCa(secretsClient, CA);

    expect(again).toEqual({ rootCertificatePem, created: true });
    expect(JSON.parse(values.get(CA.trustSecretId)!).roots).toEqual([rootCertificatePem]);
  });

  test("Given every CA secret emptied while nodes still trust the cluster's root, then no CA is made, nothing changes, and the error names the nodes and says how to recover", async () => {
    const values = secretStore();
    const { rootCertificatePem } = await ensureClusterCa(secretsClient, CA);
    const old = rootFingerprint(rootCertificatePem);
    for (const id of [CA.rootSecretId, CA.intermediateSecretId, CA.trustSecretId])
      values.set(id, '{}');
    const before = new Map(values);
    secrets.resetHistory();
    const nodes = [
      { node: 'etcd-1', roots: [old] },
      { node: 'backend-4', roots: [] },
    ];

    const error = await ensureClusterCa(secretsClient, CA, nodes).then(
      () => undefined,
      (e: Error) => e,
    );

    expect(error?.name).toBe('NodeTrustExistsError');
    expect(error?.message).toContain(
      `1 node(s) trust other roots (SHA-256): etcd-1 (${old.slice(0, 16)})`,
    );
    expect(error?.message).toContain('aws secretsmanager restore-secret');
    expect(error?.message).toContain('move /etc/pem-ha/tls aside');
    expect(secrets).not.toHaveReceivedCommand(PutSecretValueCommand);
    expect(values).toEqual(before);
  });

  test('Given new nodes that trust no root yet, then the CA is made; given the root kept and the issuing CA emptied, nodes trusting that root get a new issuing CA under it', async () => {
    const values = secretStore();
    const made = await ensureClusterCa(secretsClient, CA, [{ node: 'etcd-1', roots: [] }]);
    expect(made.created).toBe(true);
    values.set(CA.intermediateSecretId, '{}');
    const fingerprint = rootFingerprint(made.rootCertificatePem);

    const again = await ensureClusterCa(secretsClient, CA, [
      { node: 'etcd-1', roots: [fingerprint] },
    ]);

    expect(again).toEqual({ rootCertificatePem: made.rootCertificatePem, created: true });
  });

  test("Given a root, then its fingerprint is the SHA-256 of its DER as the nodes print it (openssl's, in lower-case hex)", async () => {
    secretStore();
    const { rootCertificatePem } = await ensureClusterCa(secretsClient, CA);
    const openssl = execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256'], {
      input: rootCertificatePem,
      encoding: 'utf8',
    });
    expect(rootFingerprint(rootCertificatePem)).toBe(
      openssl.split('=')[1].trim().replaceAll(':', '').toLowerCase(),
    );
  });

  test('Given a damaged CA secret, then it is reported, not overwritten', async () => {
    secrets.on(GetSecretValueCommand).resolves({ SecretString: '{"certificatePem":"x"}' });
    await expect(ensureClusterCa(secretsClient, CA)).rejects.toThrow(
      'secret pem-ha/pki/intermediate lacks privateKeyPem, rootCertificatePem',
    );
    expect(secrets).not.toHaveReceivedCommand(PutSecretValueCommand);
  });
});

describe('signNodeRequests', () => {
  const node = { name: 'etcd-2', tier: 'etcd' as const, address: '10.40.4.10' };
  const command = { commandId: 'cmd-1', instanceId: 'i-0123456789abcdef0', nodeName: 'etcd-2' };
  // A key made and dropped on the spot: only the CSR matters here.
  const csrFor = (subject: string, sans: string) => opensslCsr(subject, { sans });
  const names = 'DNS:etcd-2,DNS:localhost,IP:10.40.4.10,IP:127.0.0.1';
  const sign = () =>
    signNodeRequests(
      ssmClient,
      secretsClient,
      { node, command },
      {
        intermediateSecretId: CA.intermediateSecretId,
        validityDays: 90,
      },
    );

  test('Given CSRs in the command output, when signed, then the bundle holds the root and a chain per identity', async () => {
    secretStore();
    const { rootCertificatePem } = await ensureClusterCa(secretsClient, CA);
    const server = names;
    const peer = `${names},DNS:pem-ha-etcd-peer`;
    const stdout = `csr=etcd-server\n${csrFor('/CN=etcd-2', server)}csr=etcd-peer\n${csrFor('/CN=etcd-2', peer)}`;
    ssm
      .on(GetCommandInvocationCommand)
      .resolves({ Status: 'Success', StandardOutputContent: stdout });

    const result = await sign();

    expect(result).toMatchObject({ count: 2, identities: ['etcd-server', 'etcd-peer'] });
    const bundle = JSON.parse(Buffer.from(result.bundle, 'base64').toString());
    expect(bundle.root).toBe(rootCertificatePem);
    const leaf = new x509.X509Certificate(bundle.certificates['etcd-peer'].split('\n\n')[0]);
    expect(leaf.subject).toBe('CN=etcd-2');
    // Only certificates travel: no private key anywhere in what goes back.
    expect(Buffer.from(result.bundle, 'base64').toString()).not.toContain('PRIVATE KEY');
  });

  test('Given an identity the tier may not hold, when signed, then the whole request is refused', async () => {
    secretStore();
    await ensureClusterCa(secretsClient, CA);
    ssm.on(GetCommandInvocationCommand).resolves({
      Status: 'Success',
      StandardOutputContent: `csr=postgres-server\n${csrFor('/CN=etcd-2', names)}`,
    });
    await expect(sign()).rejects.toThrow(
      'etcd-2: certificate request for postgres-server refused: a etcd node may only request etcd-server, etcd-peer',
    );
  });

  test('Given no CSR in the output, then nothing is signed and the CA is not read', async () => {
    ssm
      .on(GetCommandInvocationCommand)
      .resolves({ Status: 'Success', StandardOutputContent: 'all valid\n' });
    await expect(sign()).resolves.toEqual({ count: 0, identities: [], bundle: '-' });
    expect(secrets).not.toHaveReceivedCommand(GetSecretValueCommand);
  });

  test('Given no CA yet, then ClusterCaMissingError', async () => {
    secretStore();
    ssm.on(GetCommandInvocationCommand).resolves({
      Status: 'Success',
      StandardOutputContent: `csr=etcd-server\n${csrFor('/CN=etcd-2', names)}`,
    });
    await expect(sign()).rejects.toBeInstanceOf(ClusterCaMissingError);
  });
});
