/** The rig's private test network: one bridge, a veth per node, nothing routed elsewhere. */
import { host } from './commands';

interface Cidr {
  readonly base: number;
  readonly prefix: number;
}

const toNumber = (address: string) =>
  address.split('.').reduce((value, octet) => (value << 8) + Number(octet), 0) >>> 0;

function parseCidr(text: string): Cidr {
  const [address, prefix = '32'] = text.split('/');
  const bits = Number(prefix);
  if (!/^(\d{1,3}\.){3}\d{1,3}$/.test(address) || !(bits >= 0 && bits <= 32)) {
    throw new Error(`rig network: expected an IPv4 CIDR; got ${text}`);
  }
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return { base: (toNumber(address) & mask) >>> 0, prefix: bits };
}

function overlaps(a: Cidr, b: Cidr): boolean {
  const prefix = Math.min(a.prefix, b.prefix);
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return (a.base & mask) >>> 0 === (b.base & mask) >>> 0;
}

export function contains(cidr: string, address: string): boolean {
  return overlaps(parseCidr(cidr), { base: toNumber(address), prefix: 32 });
}

/**
 * Refuses a CIDR that any existing route or address of this host already
 * covers: the rig would capture real traffic (or lose its own).
 */
export async function assertFree(cidr: string, ownBridge: string): Promise<void> {
  const wanted = parseCidr(cidr);
  const routes = JSON.parse(await host('ip', ['-j', '-4', 'route', 'show', 'table', 'all'])) as {
    dst: string;
    dev?: string;
  }[];
  for (const route of routes) {
    if (route.dst === 'default' || route.dev === ownBridge || !/^[\d.]+(\/\d+)?$/.test(route.dst))
      continue;
    if (overlaps(wanted, parseCidr(route.dst))) {
      throw new Error(
        `rig network: ${cidr} overlaps the host route ${route.dst} on ${route.dev}; choose another vpcCidr`,
      );
    }
  }
}

export async function createBridge(
  bridge: string,
  hostAddress: string,
  prefix: number,
): Promise<void> {
  await host('ip', ['link', 'add', bridge, 'type', 'bridge']);
  await host('ip', ['addr', 'add', `${hostAddress}/${prefix}`, 'dev', bridge]);
  await host('ip', ['link', 'set', bridge, 'up']);
}

/** A veth pair: `hostSide` on the bridge, the other end inside `netns` as eth0. */
export async function attachNode(
  bridge: string,
  netns: string,
  hostSide: string,
  address: string,
  prefix: number,
  gateway: string,
): Promise<void> {
  const peer = `${hostSide}p`;
  await host('ip', ['link', 'add', hostSide, 'type', 'veth', 'peer', 'name', peer]);
  await host('ip', ['link', 'set', peer, 'netns', netns]);
  await host('ip', ['-n', netns, 'link', 'set', peer, 'name', 'eth0']);
  await host('ip', ['-n', netns, 'addr', 'add', `${address}/${prefix}`, 'dev', 'eth0']);
  await host('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
  await host('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  await host('ip', ['-n', netns, 'route', 'add', 'default', 'via', gateway]);
  await host('ip', ['link', 'set', hostSide, 'master', bridge]);
  await host('ip', ['link', 'set', hostSide, 'up']);
}
