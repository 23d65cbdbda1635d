import { ACMClient, DeleteCertificateCommand, ImportCertificateCommand } from '@aws-sdk/client-acm';
import type { CdkCustomResourceEvent, CdkCustomResourceResponse } from 'aws-lambda';
import {
  DEFAULT_COMMON_NAME,
  DNS_NAME,
  MAX_COMMON_NAME_LENGTH,
  MAX_DNS_NAME_LENGTH,
  MAX_VALIDITY_DAYS,
  MANAGED_BY_TAG,
  MIN_VALIDITY_DAYS,
} from '../lib/web-certificate-limits';
import { ECDSA_SHA256, newKeyPair, privateKeyPem, randomSerial, validity, x509 } from '../lib/x509';
import { ErrorName, PemHaError, messageError } from '../lib/errors';

const ACM_CERTIFICATE_ARN = /^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[A-Za-z0-9-]+$/;

/** A resource property is missing or out of range; raised before anything is created. */
export class InvalidPropertiesError extends messageError(ErrorName.InvalidProperties) {}

/** ACM refuses to delete the certificate because a listener still uses it. */
export class CertificateInUseError extends PemHaError {
  constructor(certificateArn: string, options?: { cause?: unknown }) {
    super(
      ErrorName.CertificateInUse,
      `ACM certificate ${certificateArn} is still in use (attached to a load balancer listener); ` +
        'detach it, then retry the delete',
      options,
    );
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
  const keys = await newKeyPair();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [subjectCommonName(dnsName, commonName)] }],
    ...validity(params.now ?? new Date(), validityDays),
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
  return {
    certificatePem: certificate.toString('pem') + '\n',
    privateKeyPem: `${await privateKeyPem(keys.privateKey)}\n`,
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
