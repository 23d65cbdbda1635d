/**
 * What a self-signed web certificate may be: the function checks its
 * properties against these and the construct checks its props before
 * synthesis. Dependency-free, so infra can import it.
 */

/** RFC 1035 upper bound for a DNS name in text form; each label is at most 63 characters. */
export const MAX_DNS_NAME_LENGTH = 253;
/** Labels of letters, digits and inner hyphens, separated by dots. */
export const DNS_NAME = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$/;
/** X.520 upper bound (ub-common-name) for the subject's commonName. */
export const MAX_COMMON_NAME_LENGTH = 64;
/** Subject CN when the DNS name is too long to be the CN; clients match on the SAN anyway. */
export const DEFAULT_COMMON_NAME = 'pem-ha web';
export const MIN_VALIDITY_DAYS = 1;
/** The CA/Browser Forum maximum for TLS server certificates from 2018 to 2020. */
export const MAX_VALIDITY_DAYS = 825;
/** Tag that marks certificates the function owns; its delete permission is scoped by it. */
export const MANAGED_BY_TAG = { Key: 'ManagedBy', Value: 'pem-ha' } as const;
