// tsyringe (used by @peculiar/x509) needs the Reflect metadata API before x509 loads.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { ACMClient, DeleteCertificateCommand, ImportCertificateCommand } from '@aws-sdk/client-acm';
import type { CdkCustomResourceEvent, CdkCustomResourceResponse } from 'aws-lambda';

x509.cryptoProvider.set(webcrypto);

/** RFC 1035 upper bound for a DNS name in text form; each label is at most 63 characters. */
export const MAX_DNS_NAME_LENGTH = 253;
/** X.520 upper bound (ub-common-name) for the subject's commonName. */
export const MAX_COMMON_NAME_LENGTH = 64;
/** Subject CN when the DNS name is too long to be the CN; clients match on the SAN anyway. */
export const DEFAULT_COMMON_NAME = 'pem-ha web';
export const MIN_VALIDITY_DAYS = 1;
/** The CA/Browser Forum maximum for TLS server certificates from 2018 to 2020. */
export const MAX_VALIDITY_DAYS = 825;
/** Tag that marks certificates this function owns; the delete permission is scoped by it. */
export const MANAGED_BY_TAG = { Key: 'ManagedBy', Value: 'pem-ha' } as const;
/** How far notBefore is set in the past, so a slightly slow ACM clock accepts the certificate. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

const ECDSA_P256: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const ECDSA_SHA256: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const DNS_NAME = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$/;
const ACM_CERTIFICATE_ARN = /^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[A-Za-z0-9-]+$/;

/** A resource property is missing or out of range; raised before anything is created. */
export class InvalidPropertiesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidPropertiesError';
  }
}

/** ACM refuses to delete the certificate because a listener still uses it. */
export class CertificateInUseError extends Error {
  constructor(certificateArn: string, options?: { cause?: unknown }) {
    super(
      `ACM certificate ${certificateArn} is still in use (attached to a load balancer listener); ` +
        'detach it, then retry the delete',
      options,
    );
    this.name = 'CertificateInUseError';
  }
}

export interface CertificateProperties {
  /** The certificate's only DNS SAN, and its CN when it fits in one. */
  readonly dnsName: string;
  /** The CN when `dnsName` is longer than {@link MAX_COMMON_NAME_LENGTH}. */
  readonly commonName: string;
  readonly validityDays: number;
}

export interface IssueParams extends Omit<CertificateProperties, 'commonName'> {
  /** Defaults to {@link DEFAULT_COMMON_NAME}. */
  readonly commonName?: string;
  /** Issue time; defaults to the current time. */
  readonly now?: Date;
}

export interface IssuedCertificate {
  readonly certificatePem: string;
  /** PKCS#8 PEM. Only ever passed to ImportCertificate. */
  readonly privateKeyPem: string;
}

function describeGiven(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}

/** The subject CN: the DNS name when it fits in a CN, otherwise the fixed short name. */
export function subjectCommonName(dnsName: string, commonName: string): string {
  return dnsName.length <= MAX_COMMON_NAME_LENGTH ? dnsName : commonName;
}

/** Validates the custom resource's properties; CloudFormation passes numbers as strings. */
export function parseProperties(properties: Record<string, unknown>): CertificateProperties {
  const dnsName = properties.DnsName;
  if (
    typeof dnsName !== 'string' ||
    dnsName.length === 0 ||
    dnsName.length > MAX_DNS_NAME_LENGTH ||
    !DNS_NAME.test(dnsName)
  ) {
    throw new InvalidPropertiesError(
      `DnsName must be a DNS name of 1 to ${MAX_DNS_NAME_LENGTH} characters ` +
        `(letters, digits, '-' and '.', labels of at most 63); given ${describeGiven(dnsName)}`,
    );
  }
  const commonName = properties.CommonName ?? DEFAULT_COMMON_NAME;
  if (
    typeof commonName !== 'string' ||
    commonName.length === 0 ||
    commonName.length > MAX_COMMON_NAME_LENGTH
  ) {
    throw new InvalidPropertiesError(
      `CommonName must be 1 to ${MAX_COMMON_NAME_LENGTH} characters; ` +
        `given ${describeGiven(commonName)}`,
    );
  }
  const rawDays = properties.ValidityDays;
  const validityDays =
    typeof rawDays === 'string' && /^\d+$/.test(rawDays.trim()) ? Number(rawDays) : rawDays;
  if (
    typeof validityDays !== 'number' ||
    !Number.isInteger(validityDays) ||
    validityDays < MIN_VALIDITY_DAYS ||
    validityDays > MAX_VALIDITY_DAYS
  ) {
    throw new InvalidPropertiesError(
      `ValidityDays must be an integer from ${MIN_VALIDITY_DAYS} to ${MAX_VALIDITY_DAYS}; ` +
        `given ${describeGiven(rawDays)}`,
    );
  }
  return { dnsName, commonName, validityDays };
}

/** 16 random bytes, high bit clear (positive INTEGER) and non-zero first byte (fixed length). */
function randomSerialNumber(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return Buffer.from(bytes).toString('hex');
}

function toPem(label: string, der: ArrayBuffer): string {
  const lines =
    Buffer.from(der)
      .toString('base64')
      .match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * A fresh ECDSA P-256 key and a self-signed TLS server certificate for `dnsName`: always its
 * only DNS SAN, and its CN when at most 64 characters (otherwise the CN is `commonName`).
 */
export async function issueSelfSignedCertificate(params: IssueParams): Promise<IssuedCertificate> {
  const { dnsName, commonName, validityDays } = parseProperties({
    DnsName: params.dnsName,
    CommonName: params.commonName,
    ValidityDays: params.validityDays,
  });
  // X.509 times have whole-second precision.
  const now = Math.floor((params.now ?? new Date()).getTime() / 1000) * 1000;
  const notBefore = new Date(now - CLOCK_SKEW_MS);
  const notAfter = new Date(notBefore.getTime() + validityDays * DAY_MS);
  const keys = (await webcrypto.subtle.generateKey(ECDSA_P256, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialNumber(),
    name: [{ CN: [subjectCommonName(dnsName, commonName)] }],
    notBefore,
    notAfter,
    signingAlgorithm: ECDSA_SHA256,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: dnsName }], false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return {
    certificatePem: certificate.toString('pem') + '\n',
    privateKeyPem: toPem('PRIVATE KEY', pkcs8),
  };
}

async function importCertificate(
  acm: ACMClient,
  props: CertificateProperties,
): Promise<CdkCustomResourceResponse> {
  const issued = await issueSelfSignedCertificate(props);
  const encoder = new TextEncoder();
  const result = await acm.send(
    new ImportCertificateCommand({
      Certificate: encoder.encode(issued.certificatePem),
      PrivateKey: encoder.encode(issued.privateKeyPem),
      Tags: [{ Key: 'Name', Value: props.dnsName }, { ...MANAGED_BY_TAG }],
    }),
  );
  const certificateArn = result.CertificateArn;
  if (!certificateArn) throw new Error('ACM ImportCertificate returned no CertificateArn');
  return { PhysicalResourceId: certificateArn, Data: { CertificateArn: certificateArn } };
}

async function deleteCertificate(acm: ACMClient, physicalResourceId: string): Promise<void> {
  // A failed Create leaves a physical id that is no certificate: nothing to delete.
  if (!ACM_CERTIFICATE_ARN.test(physicalResourceId)) return;
  try {
    await acm.send(new DeleteCertificateCommand({ CertificateArn: physicalResourceId }));
  } catch (error) {
    const name = (error as { name?: unknown } | undefined)?.name;
    if (name === 'ResourceNotFoundException') return;
    if (name === 'ResourceInUseException') {
      throw new CertificateInUseError(physicalResourceId, { cause: error });
    }
    throw error;
  }
}

/**
 * Custom resource lifecycle. Create imports a new certificate; Update replaces it (new
 * physical id, so CloudFormation deletes the old one) only when DnsName, ValidityDays or the
 * subject CN changed (a new CommonName matters only for a DNS name too long to be the CN);
 * Delete removes it and treats "already gone" as success.
 */
export async function onEvent(
  event: CdkCustomResourceEvent,
  acm: ACMClient,
): Promise<CdkCustomResourceResponse> {
  switch (event.RequestType) {
    case 'Create':
      return importCertificate(acm, parseProperties(event.ResourceProperties));
    case 'Update': {
      const props = parseProperties(event.ResourceProperties);
      const old = event.OldResourceProperties;
      // Resources created before CommonName existed have none: they got the default.
      const oldCommonName: unknown = old.CommonName ?? DEFAULT_COMMON_NAME;
      const unchanged =
        old.DnsName === props.dnsName &&
        typeof oldCommonName === 'string' &&
        subjectCommonName(props.dnsName, oldCommonName) ===
          subjectCommonName(props.dnsName, props.commonName) &&
        Number(old.ValidityDays) === props.validityDays &&
        ACM_CERTIFICATE_ARN.test(event.PhysicalResourceId);
      if (!unchanged) return importCertificate(acm, props);
      return {
        PhysicalResourceId: event.PhysicalResourceId,
        Data: { CertificateArn: event.PhysicalResourceId },
      };
    }
    case 'Delete':
      await deleteCertificate(acm, event.PhysicalResourceId);
      return { PhysicalResourceId: event.PhysicalResourceId };
  }
}
