import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import {
  ACMClient,
  AccessDeniedException,
  DeleteCertificateCommand,
  ImportCertificateCommand,
  type ImportCertificateCommandInput,
  ResourceInUseException,
  ResourceNotFoundException,
} from '@aws-sdk/client-acm';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type { CdkCustomResourceEvent } from 'aws-lambda';
import { X509Certificate, createPrivateKey, sign, verify } from 'node:crypto';
import {
  CertificateInUseError,
  InvalidPropertiesError,
  issueSelfSignedCertificate,
  onEvent,
} from '../../functions/web-certificate/certificate';
import { handler } from '../../functions/web-certificate/handler';
import { DEFAULT_COMMON_NAME } from '../../functions/lib/web-certificate-limits';

const DNS_NAME = 'internal-pem-web-1234567890.eu-west-1.elb.amazonaws.com';
// A realistic internal ALB name too long to be a CN (X.520 allows at most 64 characters).
const LONG_DNS_NAME =
  'internal-pem-ha-prod-web-loadbalancer-1234567890.ap-southeast-2.elb.amazonaws.com';
/** Three 63-character labels and a last one of `lastLabel`: 192 + `lastLabel` characters. */
const longestLabels = (lastLabel: number): string =>
  ['a'.repeat(63), 'a'.repeat(63), 'a'.repeat(63), 'b'.repeat(lastLabel)].join('.');
const DNS_NAME_253 = longestLabels(61);
const DNS_NAME_254 = longestLabels(62);
const ARN = 'arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
const NEW_ARN =
  'arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555';
const DAY_MS = 24 * 60 * 60 * 1000;

const acm = mockClient(ACMClient);
const client = new ACMClient({ region: 'eu-west-1' });

// CloudFormation passes every custom resource property as a string.
const props = (
  overrides: { DnsName?: unknown; CommonName?: unknown; ValidityDays?: unknown } = {},
) => ({
  ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:provider',
  DnsName: DNS_NAME as unknown,
  ValidityDays: '397' as unknown,
  ...overrides,
});

const common = {
  ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:provider',
  ResponseURL: 'https://cloudformation-custom-resource-response.example/',
  StackId: 'arn:aws:cloudformation:eu-west-1:123456789012:stack/pem-ha/guid',
  RequestId: 'request-1',
  LogicalResourceId: 'WebCertificate',
  ResourceType: 'Custom::PemHaSelfSignedCertificate',
};

const createEvent = (resourceProps = props()): CdkCustomResourceEvent => ({
  ...common,
  RequestType: 'Create',
  ResourceProperties: resourceProps,
});

const updateEvent = (
  resourceProps: ReturnType<typeof props>,
  oldProps: ReturnType<typeof props>,
  physicalResourceId = ARN,
): CdkCustomResourceEvent => ({
  ...common,
  RequestType: 'Update',
  PhysicalResourceId: physicalResourceId,
  ResourceProperties: resourceProps,
  OldResourceProperties: oldProps,
});

const deleteEvent = (
  physicalResourceId = ARN,
  resourceProps = props(),
): CdkCustomResourceEvent => ({
  ...common,
  RequestType: 'Delete',
  PhysicalResourceId: physicalResourceId,
  ResourceProperties: resourceProps,
});

function importedInput(call = 0): ImportCertificateCommandInput {
  return acm.commandCalls(ImportCertificateCommand)[call]!.args[0].input;
}

const text = (bytes: Uint8Array | undefined) => Buffer.from(bytes ?? []).toString('utf8');

beforeEach(() => {
  acm.reset();
  acm.on(ImportCertificateCommand).resolves({ CertificateArn: NEW_ARN });
  acm.on(DeleteCertificateCommand).resolves({});
});

describe('issueSelfSignedCertificate', () => {
  const now = new Date('2030-03-04T05:06:07.890Z');

  it('issues an ECDSA P-256 server certificate for the DNS name, valid for the days asked', async () => {
    // Given a DNS name, a validity and a fixed issue time
    // When the certificate is issued
    const issued = await issueSelfSignedCertificate({ dnsName: DNS_NAME, validityDays: 30, now });

    // Then it parses, names the DNS name in CN and SAN, and has the requested validity
    const cert = new x509.X509Certificate(issued.certificatePem);
    expect(cert.subject).toBe(`CN=${DNS_NAME}`);
    expect(cert.issuer).toBe(cert.subject);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    expect(san?.names.items.map((n) => [n.type, n.value])).toEqual([['dns', DNS_NAME]]);
    expect(cert.publicKey.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-256' });
    expect(cert.signatureAlgorithm).toMatchObject({ name: 'ECDSA', hash: { name: 'SHA-256' } });
    expect(cert.notBefore.getTime()).toBeLessThanOrEqual(now.getTime());
    expect(cert.notAfter.getTime()).toBeGreaterThan(now.getTime());
    expect(cert.notAfter.getTime() - cert.notBefore.getTime()).toBe(30 * DAY_MS);
    expect(await cert.isSelfSigned()).toBe(true);

    // And it is a leaf for TLS servers only
    expect(cert.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(false);
    expect(cert.getExtension(x509.KeyUsagesExtension)?.usages).toBe(
      x509.KeyUsageFlags.digitalSignature,
    );
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([
      x509.ExtendedKeyUsage.serverAuth,
    ]);
  });

  it('returns a private key that belongs to the certificate', async () => {
    // Given an issued certificate and key
    const issued = await issueSelfSignedCertificate({ dnsName: DNS_NAME, validityDays: 1, now });

    // When data is signed with the key
    const key = createPrivateKey(issued.privateKeyPem);
    const signature = sign('sha256', Buffer.from('pem-ha'), key);

    // Then the certificate's public key verifies it, and OpenSSL pairs key and certificate
    const nodeCert = new X509Certificate(issued.certificatePem);
    expect(key.asymmetricKeyType).toBe('ec');
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(verify('sha256', Buffer.from('pem-ha'), nodeCert.publicKey, signature)).toBe(true);
    expect(nodeCert.checkPrivateKey(key)).toBe(true);
    expect(issued.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('uses a fresh key and a random positive serial number every time', async () => {
    // Given two certificates for the same name
    const [a, b] = await Promise.all([
      issueSelfSignedCertificate({ dnsName: DNS_NAME, validityDays: 1, now }),
      issueSelfSignedCertificate({ dnsName: DNS_NAME, validityDays: 1, now }),
    ]);

    // Then keys and serials differ, and each serial is a positive 128-bit integer
    const serials = [a, b].map((i) => new x509.X509Certificate(i.certificatePem).serialNumber);
    expect(a.privateKeyPem).not.toBe(b.privateKeyPem);
    expect(serials[0]).not.toBe(serials[1]);
    for (const serial of serials) {
      expect(serial).toMatch(/^[0-7][0-9a-f]{31}$/i);
    }
  });

  it('puts a DNS name longer than 64 characters in the SAN and the fallback name in the CN', async () => {
    // Given a realistic internal ALB name too long to be a CN
    expect(LONG_DNS_NAME.length).toBeGreaterThan(70);

    // When a certificate is issued for it without a CommonName
    const issued = await issueSelfSignedCertificate({
      dnsName: LONG_DNS_NAME,
      validityDays: 1,
      now,
    });

    // Then the SAN carries the full name and the CN is the default short name
    const cert = new x509.X509Certificate(issued.certificatePem);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    expect(san?.names.items.map((n) => [n.type, n.value])).toEqual([['dns', LONG_DNS_NAME]]);
    expect(cert.subject).toBe(`CN=${DEFAULT_COMMON_NAME}`);
    expect(DEFAULT_COMMON_NAME).toBe('pem-ha web');
    // And OpenSSL matches the name through the SAN
    expect(new X509Certificate(issued.certificatePem).checkHost(LONG_DNS_NAME)).toBe(LONG_DNS_NAME);
  });

  it('uses the given CommonName only when the DNS name is too long to be the CN', async () => {
    // Given a custom CommonName, with a long and with a short DNS name
    const commonName = 'web.pem-ha';

    // When certificates are issued for both
    const [long, short] = await Promise.all([
      issueSelfSignedCertificate({ dnsName: LONG_DNS_NAME, commonName, validityDays: 1, now }),
      issueSelfSignedCertificate({ dnsName: DNS_NAME, commonName, validityDays: 1, now }),
    ]);

    // Then the long name gets the custom CN, and the short name stays its own CN
    expect(new x509.X509Certificate(long.certificatePem).subject).toBe(`CN=${commonName}`);
    expect(new x509.X509Certificate(short.certificatePem).subject).toBe(`CN=${DNS_NAME}`);
  });

  it('accepts a DNS name of exactly 253 characters', async () => {
    // Given the longest DNS name allowed
    const dnsName = DNS_NAME_253;
    expect(dnsName).toHaveLength(253);

    // When a certificate is issued for it
    const issued = await issueSelfSignedCertificate({ dnsName, validityDays: 1, now });

    // Then its SAN carries the whole name
    const san = new x509.X509Certificate(issued.certificatePem).getExtension(
      x509.SubjectAlternativeNameExtension,
    );
    expect(san?.names.items.map((n) => n.value)).toEqual([dnsName]);
  });

  it('refuses a DNS name of 254 characters with InvalidPropertiesError', async () => {
    // Given a DNS name one character over the limit, every label within 63
    expect(DNS_NAME_254).toHaveLength(254);

    // When a certificate is asked for it
    const error = await issueSelfSignedCertificate({
      dnsName: DNS_NAME_254,
      validityDays: 1,
      now,
    }).catch((e: unknown) => e);

    // Then the named error says what is allowed
    expect(error).toBeInstanceOf(InvalidPropertiesError);
    expect((error as Error).message).toMatch(/^DnsName must be a DNS name of 1 to 253 characters/);
  });
});

describe('onEvent', () => {
  it('Create imports a tagged certificate and returns only its ARN', async () => {
    // Given a Create request with the properties as CloudFormation sends them
    // When it is handled
    const response = await onEvent(createEvent(props({ ValidityDays: '90' })), client);

    // Then ACM got the certificate, its key and the ownership tags
    expect(acm).toHaveReceivedCommandTimes(ImportCertificateCommand, 1);
    const input = importedInput();
    expect(input.CertificateArn).toBeUndefined();
    expect(input.Tags).toEqual([
      { Key: 'Name', Value: DNS_NAME },
      { Key: 'ManagedBy', Value: 'pem-ha' },
    ]);
    const cert = new x509.X509Certificate(text(input.Certificate));
    expect(cert.subject).toBe(`CN=${DNS_NAME}`);
    expect(cert.notAfter.getTime() - cert.notBefore.getTime()).toBe(90 * DAY_MS);
    expect(cert.notBefore.getTime()).toBeLessThanOrEqual(Date.now());
    expect(
      new X509Certificate(text(input.Certificate)).checkPrivateKey(
        createPrivateKey(text(input.PrivateKey)),
      ),
    ).toBe(true);

    // And the response carries the ARN and nothing secret
    expect(response).toEqual({ PhysicalResourceId: NEW_ARN, Data: { CertificateArn: NEW_ARN } });
    expect(JSON.stringify(response)).not.toContain('PRIVATE KEY');
  });

  it('Create for an ALB name longer than 64 characters uses the SAN and the CommonName', async () => {
    // Given a Create for a 70+ character internal ALB name and a CommonName
    expect(LONG_DNS_NAME.length).toBeGreaterThan(70);
    const event = createEvent(props({ DnsName: LONG_DNS_NAME, CommonName: 'pem-ha web' }));

    // When it is handled
    const response = await onEvent(event, client);

    // Then the imported certificate names the ALB in its SAN and the CommonName in its CN
    const input = importedInput();
    const cert = new x509.X509Certificate(text(input.Certificate));
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    expect(san?.names.items.map((n) => [n.type, n.value])).toEqual([['dns', LONG_DNS_NAME]]);
    expect(cert.subject).toBe('CN=pem-ha web');
    // And the Name tag carries the full DNS name
    expect(input.Tags).toContainEqual({ Key: 'Name', Value: LONG_DNS_NAME });
    expect(response).toEqual({ PhysicalResourceId: NEW_ARN, Data: { CertificateArn: NEW_ARN } });
  });

  it('Update with unchanged properties keeps the certificate', async () => {
    // Given an Update whose DnsName and ValidityDays did not change
    // When it is handled
    const response = await onEvent(updateEvent(props(), props()), client);

    // Then nothing is imported and the same physical id comes back
    expect(acm).not.toHaveReceivedCommand(ImportCertificateCommand);
    expect(response).toEqual({ PhysicalResourceId: ARN, Data: { CertificateArn: ARN } });
  });

  it.each([
    [
      'a CommonName that a short DnsName makes irrelevant',
      props({ CommonName: 'other' }),
      props({ CommonName: 'pem-ha web' }),
    ],
    [
      'the default CommonName, made explicit',
      props({ DnsName: LONG_DNS_NAME, CommonName: 'pem-ha web' }),
      props({ DnsName: LONG_DNS_NAME }),
    ],
  ])('Update to %s keeps the certificate', async (_case, newProps, oldProps) => {
    // Given an Update that leaves the certificate's names and validity as they were
    // When it is handled
    const response = await onEvent(updateEvent(newProps, oldProps), client);

    // Then nothing is imported and the same physical id comes back
    expect(acm).not.toHaveReceivedCommand(ImportCertificateCommand);
    expect(response).toEqual({ PhysicalResourceId: ARN, Data: { CertificateArn: ARN } });
  });

  it.each([
    [
      'DnsName',
      props({ DnsName: 'internal-pem-web-2.eu-west-1.elb.amazonaws.com' }),
      props(),
      'CN=internal-pem-web-2.eu-west-1.elb.amazonaws.com',
    ],
    ['ValidityDays', props({ ValidityDays: '30' }), props(), `CN=${DNS_NAME}`],
    [
      'CommonName for a long DnsName',
      props({ DnsName: LONG_DNS_NAME, CommonName: 'web.pem-ha' }),
      props({ DnsName: LONG_DNS_NAME }),
      'CN=web.pem-ha',
    ],
  ])(
    'Update with a new %s imports a new certificate',
    async (_changed, newProps, oldProps, subject) => {
      // Given an Update that changes a property the certificate is made from
      // When it is handled
      const response = await onEvent(updateEvent(newProps, oldProps), client);

      // Then a new certificate is imported and its new ARN replaces the old one
      expect(acm).toHaveReceivedCommandTimes(ImportCertificateCommand, 1);
      expect(new x509.X509Certificate(text(importedInput().Certificate)).subject).toBe(subject);
      expect(response).toEqual({
        PhysicalResourceId: NEW_ARN,
        Data: { CertificateArn: NEW_ARN },
      });
    },
  );

  it('Delete removes the certificate', async () => {
    // Given a Delete for an imported certificate
    // When it is handled
    const response = await onEvent(deleteEvent(), client);

    // Then ACM deletes exactly that certificate
    expect(acm).toHaveReceivedCommandWith(DeleteCertificateCommand, { CertificateArn: ARN });
    expect(response).toEqual({ PhysicalResourceId: ARN });
  });

  it('Delete succeeds when the certificate is already gone', async () => {
    // Given ACM no longer knows the certificate
    acm
      .on(DeleteCertificateCommand)
      .rejects(new ResourceNotFoundException({ message: 'not found', $metadata: {} }));

    // When the Delete is handled, Then it succeeds
    await expect(onEvent(deleteEvent(), client)).resolves.toEqual({ PhysicalResourceId: ARN });
  });

  it('Delete of a certificate still on a listener fails with CertificateInUseError', async () => {
    // Given ACM reports the certificate in use
    acm
      .on(DeleteCertificateCommand)
      .rejects(new ResourceInUseException({ message: 'in use', $metadata: {} }));

    // When the Delete is handled
    const error = await onEvent(deleteEvent(), client).catch((e: unknown) => e);

    // Then the error is named and says which certificate
    expect(error).toBeInstanceOf(CertificateInUseError);
    expect((error as Error).name).toBe('CertificateInUseError');
    expect((error as Error).message).toContain(ARN);
  });

  it('Delete passes on other ACM errors', async () => {
    // Given ACM denies the delete
    acm
      .on(DeleteCertificateCommand)
      .rejects(new AccessDeniedException({ message: 'denied', $metadata: {} }));

    // When the Delete is handled, Then the error is not swallowed
    await expect(onEvent(deleteEvent(), client)).rejects.toThrow('denied');
  });

  it('Delete after a failed Create calls nothing', async () => {
    // Given a physical id that is no ACM ARN (the Create never imported anything)
    // When the Delete is handled, with properties that were never valid
    await onEvent(deleteEvent('request-1', props({ DnsName: '', ValidityDays: '0' })), client);

    // Then ACM is not called
    expect(acm).not.toHaveReceivedCommand(DeleteCertificateCommand);
  });

  it.each([
    [
      'a missing DnsName',
      { DnsName: undefined },
      /^DnsName must be a DNS name of 1 to 253 .*given nothing$/,
    ],
    ['an empty DnsName', { DnsName: '' }, /^DnsName must be .*; given ""$/],
    [
      'a 254-character DnsName',
      { DnsName: DNS_NAME_254 },
      /^DnsName must be a DNS name of 1 to 253 characters .*given "a{63}\./,
    ],
    [
      'a DnsName with a 64-character label',
      { DnsName: `${'a'.repeat(64)}.example.com` },
      /^DnsName .*labels of at most 63\); given "a{64}\.example\.com"$/,
    ],
    ['a DnsName with spaces', { DnsName: 'not a host' }, /^DnsName .*given "not a host"$/],
    ['a numeric DnsName', { DnsName: 42 }, /^DnsName .*given 42$/],
    [
      'an empty CommonName',
      { CommonName: '' },
      /^CommonName must be 1 to 64 characters; given ""$/,
    ],
    [
      'a 65-character CommonName',
      { CommonName: 'c'.repeat(65) },
      /^CommonName must be 1 to 64 characters; given "c{65}"$/,
    ],
    ['a numeric CommonName', { CommonName: 7 }, /^CommonName .*given 7$/],
    ['a missing ValidityDays', { ValidityDays: undefined }, /^ValidityDays .*given nothing$/],
    [
      'ValidityDays 0',
      { ValidityDays: '0' },
      /^ValidityDays must be an integer from 1 to 825; given "0"$/,
    ],
    ['ValidityDays 826', { ValidityDays: '826' }, /^ValidityDays .*1 to 825; given "826"$/],
    ['ValidityDays 1.5', { ValidityDays: '1.5' }, /^ValidityDays .*given "1.5"$/],
    ['ValidityDays "ten"', { ValidityDays: 'ten' }, /^ValidityDays .*given "ten"$/],
  ])('Create with %s fails with InvalidPropertiesError', async (_case, overrides, message) => {
    // Given a Create with a bad property
    // When it is handled
    const error = await onEvent(createEvent(props(overrides)), client).catch((e: unknown) => e);

    // Then a named error says which property, what is allowed and what was given
    expect(error).toBeInstanceOf(InvalidPropertiesError);
    expect((error as Error).name).toBe('InvalidPropertiesError');
    expect((error as Error).message).toMatch(message);
    // And nothing was imported
    expect(acm).not.toHaveReceivedCommand(ImportCertificateCommand);
  });

  it('Update to bad properties fails before anything is imported', async () => {
    // Given an Update to a validity of zero days
    // When it is handled, Then it is refused
    await expect(
      onEvent(updateEvent(props({ ValidityDays: '0' }), props()), client),
    ).rejects.toBeInstanceOf(InvalidPropertiesError);
    expect(acm).not.toHaveReceivedCommand(ImportCertificateCommand);
  });
});

describe('handler', () => {
  let output: string[];

  beforeEach(() => {
    output = [];
    const capture = ((chunk: unknown) => {
      output.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    jest.spyOn(process.stdout, 'write').mockImplementation(capture);
    jest.spyOn(process.stderr, 'write').mockImplementation(capture);
  });

  afterEach(() => jest.restoreAllMocks());

  it('logs the request type and DnsName but never the private key', async () => {
    // Given a Create request through the Lambda entry point
    // When it is handled
    const response = await handler(createEvent());

    // Then the key went to ACM only
    expect(text(importedInput().PrivateKey)).toContain('BEGIN PRIVATE KEY');
    expect(JSON.stringify(response)).not.toContain('PRIVATE KEY');
    // And the log names the request, without any key material
    const log = output.join('');
    expect(log).toContain('"requestType":"Create"');
    expect(log).toContain(`"dnsName":"${DNS_NAME}"`);
    expect(log).not.toContain('PRIVATE KEY');
    expect(log).not.toContain(text(importedInput().PrivateKey).split('\n')[1]);
  });
});
