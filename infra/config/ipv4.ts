/** Minimal IPv4 arithmetic for validating CIDRs and placing fixed node addresses. */

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const CIDR_PATTERN = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}/(3[0-2]|[12]?\\d)$`);

export interface Ipv4Cidr {
  readonly network: number;
  readonly prefix: number;
}

export function parseCidr(value: string): Ipv4Cidr | undefined {
  if (!CIDR_PATTERN.test(value)) return undefined;
  const [address, prefixText] = value.split('/');
  const prefix = Number(prefixText);
  const numeric = address.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  // A CIDR whose host bits are set is almost always a typo for another network.
  if ((numeric & ~mask) >>> 0 !== 0) return undefined;
  return { network: numeric, prefix };
}

export function formatAddress(numeric: number): string {
  return [24, 16, 8, 0].map((shift) => (numeric >>> shift) & 0xff).join('.');
}

/**
 * The address `offset` hosts into a subnet. AWS reserves the first four
 * addresses and the last one of every subnet, so offsets start at 4.
 */
export function hostAddress(subnetCidr: string, offset: number): string {
  const cidr = parseCidr(subnetCidr);
  if (!cidr) throw new Error(`hostAddress: ${subnetCidr} is not an IPv4 CIDR`);
  const size = 2 ** (32 - cidr.prefix);
  if (offset < 4 || offset > size - 2) {
    throw new Error(`hostAddress: offset ${offset} is outside the usable range of ${subnetCidr}`);
  }
  return formatAddress(cidr.network + offset);
}
