import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import * as x509 from '@peculiar/x509';
import { mockClient } from 'aws-sdk-client-mock';
import { ensureClusterCa } from '../../functions/lib/ca-store';
import { CLUSTER_ROLE_NAMES } from '../../functions/lib/outside-agent';
import { signOutsideAgent } from '../../functions/sign-certificates/sign';
import { CA_SECRETS, inMemoryCaSecrets, opensslCsr } from '../helpers/ca-secrets';

const secrets = mockClient(SecretsManagerClient);
const client = new SecretsManagerClient({ region: 'eu-west-1' });
const CA = CA_SECRETS;
const SETTINGS = { intermediateSecretId: CA.intermediateSecretId, validityDays: 90 };
let dir: string;
let values: Map<string, string>;

/** A key and CSR made as an outside agent's host makes them. */
const csrFor = (subject: string) =>
  opensslCsr(subject, { keyOut: join(dir, `${Math.random()}.key`) });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'outside-agent-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(async () => {
  secrets.reset();
  values = inMemoryCaSecrets(secrets);
  await ensureClusterCa(client, CA);
});

describe("an outside PEM agent's certificate", () => {
  test('Given its CSR with its database user as CN, when signed, then the chain verifies to the cluster root for client authentication only, with no other name', async () => {
    const issued = await signOutsideAgent(
      client,
      { agentUser: 'agent_orders_db', csr: csrFor('/CN=agent_orders_db') },
      SETTINGS,
    );
    const [leafPem, intermediatePem] = issued.certificate.split(
      /(?<=-----END CERTIFICATE-----)\n+/,
    );
    writeFileSync(join(dir, 'root.crt'), issued.rootCertificate);
    writeFileSync(join(dir, 'intermediate.crt'), intermediatePem);
    writeFileSync(join(dir, 'leaf.crt'), leafPem);
    const verified = execFileSync('openssl', [
      'verify',
      '-purpose',
      'sslclient',
      '-CAfile',
      join(dir, 'root.crt'),
      '-untrusted',
      join(dir, 'intermediate.crt'),
      join(dir, 'leaf.crt'),
    ]).toString();
    expect(verified).toContain(': OK');
    expect(issued.rootCertificate).toBe(JSON.parse(values.get(CA.rootSecretId)!).certificatePem);
    const leaf = new x509.X509Certificate(leafPem);
    expect(leaf.subject).toBe('CN=agent_orders_db');
    expect(leaf.getExtension(x509.ExtendedKeyUsageExtension)!.usages).toEqual([
      '1.3.6.1.5.5.7.3.2',
    ]);
    expect(leaf.getExtension(x509.SubjectAlternativeNameExtension)).toBeNull();
    expect(issued).toMatchObject({
      agentUser: 'agent_orders_db',
      serial: leaf.serialNumber.toUpperCase(),
      notAfter: leaf.notAfter.toISOString(),
    });
    // 90 days from now, give or take the clock's minute
    expect(leaf.notAfter.getTime() - Date.now()).toBeGreaterThan(89 * 86_400_000);
  });

  test.each([...CLUSTER_ROLE_NAMES, 'agent1', 'agent101', 'pg_monitor', 'Orders', 'orders-db', ''])(
    'Given the agent user %j, then it is refused by name before the CA is read',
    async (agentUser) => {
      secrets.resetHistory();
      await expect(
        signOutsideAgent(client, { agentUser, csr: csrFor(`/CN=${agentUser || 'x'}`) }, SETTINGS),
      ).rejects.toMatchObject({
        name: 'InvalidInputError',
        message: expect.stringMatching(/^agentUser must be a PostgreSQL role name/),
      });
      expect(secrets.calls()).toHaveLength(0);
    },
  );

  test('Given a CSR whose CN is another user, then CsrRejectedError names both', async () => {
    await expect(
      signOutsideAgent(
        client,
        { agentUser: 'agent_billing_db', csr: csrFor('/CN=agent_orders_db') },
        SETTINGS,
      ),
    ).rejects.toMatchObject({
      name: 'CsrRejectedError',
      message:
        'outside agent agent_billing_db: certificate request for pem-agent refused: the subject must be CN=agent_billing_db; got CN=agent_orders_db',
    });
  });

  test('Given no cluster CA yet, then ClusterCaMissingError and nothing signed', async () => {
    values.set(CA.intermediateSecretId, '{}');
    await expect(
      signOutsideAgent(
        client,
        { agentUser: 'agent_orders_db', csr: csrFor('/CN=agent_orders_db') },
        SETTINGS,
      ),
    ).rejects.toMatchObject({ name: 'ClusterCaMissingError' });
  });
});
