// tsyringe (used by @peculiar/x509) needs the Reflect metadata API before x509 loads.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto);

/** @peculiar/x509, with Node's WebCrypto as its provider. */
export { x509 };

/** Every key pem-ha makes, CA or leaf. */
export const ECDSA_P256: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
export const ECDSA_SHA256: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
export const DAY_MS = 24 * 60 * 60 * 1000;
/** notBefore this far in the past, so a reader whose clock is slightly behind accepts a new certificate. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

/** A fresh, exportable ECDSA P-256 key pair. */
export async function newKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ECDSA_P256, true, [
    'sign',
    'verify',
  ]) as Promise<webcrypto.CryptoKeyPair>;
}

/** 16 random bytes, high bit clear (positive INTEGER) and the next one set (fixed length). */
export function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return Buffer.from(bytes).toString('hex');
}

/** The private key as PKCS#8 PEM, the form secrets and nodes store it in. */
export async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/** A stored PKCS#8 PEM key, for signing only. */
export async function signingKeyOf(pem: string): Promise<webcrypto.CryptoKey> {
  const der = x509.PemConverter.decode(pem)[0];
  return webcrypto.subtle.importKey('pkcs8', der, ECDSA_P256, false, ['sign']);
}

/**
 * notBefore a little in the past and a life of `days` from it (whole seconds,
 * as X.509 times are), never past `notAfterCap` (the issuer's own end).
 */
export function validity(
  now: Date,
  days: number,
  notAfterCap?: Date,
): { notBefore: Date; notAfter: Date } {
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - CLOCK_SKEW_MS);
  const end = notBefore.getTime() + days * DAY_MS;
  return { notBefore, notAfter: new Date(Math.min(end, notAfterCap?.getTime() ?? end)) };
}
