/**
 * The operating systems rig nodes can run, each as the settings it is
 * synthesized with and the root its nodes' overlays sit on.
 *
 * Debian 13 is what the default deploy's majors are (PostgreSQL 17, Patroni 4,
 * etcd 3.5) and what every suite runs on, except one: the upgrade suite needs
 * two real minors of one PostgreSQL major, and today only Debian 12 serves that
 * (15.x in bookworm and bookworm-security), so it alone runs Debian 12 with
 * its Patroni 3.0.2, which synth refuses to anyone else.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { RIG_ONLY_ALLOW_PATRONI_302 } from '../infra/config/load-config';

export type RigFamilyName = 'debian-13' | 'debian-12';

export interface RigFamily {
  readonly name: RigFamilyName;
  /** The nodes' overlay lower layer: the operating system's files. */
  readonly lowerDir: string;
  readonly postgresMajor: number;
  /** What `cdk synth -c` gets so the template installs this family's own packages. */
  readonly context: Readonly<Record<string, string>>;
  /**
   * Patroni before 3.0.3: a leader that comes back after a failover can put
   * its old key back (patroni/patroni#2689), so a partition is healed with
   * Patroni stopped first (rig/patroni.ts healPartition).
   */
  readonly patroniLeaderKeyBug: boolean;
  /** Nodes install from the local apt repository of two PostgreSQL 15 minors (rig/apt.ts). */
  readonly localAptRepository: boolean;
  /**
   * The root has Apache, which the PEM double's web site runs on (the
   * debian-12 family's root is this host's own, which has none).
   */
  readonly hasPemWebServer: boolean;
}

/** Where rig/build-root.sh keeps the Debian 13 root. */
export const RIG_ROOTS = '/var/cache/pem-ha-rig/roots';

export const RIG_FAMILIES: Record<RigFamilyName, RigFamily> = {
  'debian-13': {
    name: 'debian-13',
    lowerDir: join(RIG_ROOTS, 'debian-13'),
    postgresMajor: 17,
    context: {
      amiFamily: 'debian-13',
      postgresMajorVersion: '17',
      postgresPackageSource: 'os',
    },
    patroniLeaderKeyBug: false,
    localAptRepository: false,
    hasPemWebServer: true,
  },
  'debian-12': {
    name: 'debian-12',
    lowerDir: '/',
    postgresMajor: 15,
    context: {
      amiFamily: 'debian-12',
      postgresMajorVersion: '15',
      postgresPackageSource: 'os',
      [RIG_ONLY_ALLOW_PATRONI_302]: 'true',
    },
    patroniLeaderKeyBug: true,
    localAptRepository: true,
    hasPemWebServer: false,
  },
};

export function rigFamily(name: string = 'debian-13'): RigFamily {
  const family = RIG_FAMILIES[name as RigFamilyName];
  if (!family) {
    throw new Error(
      `rig family must be one of ${Object.keys(RIG_FAMILIES).join(', ')}; got ${name}`,
    );
  }
  return family;
}

/** Throws, naming what is missing and the command that installs it, unless the family can run. */
export function assertFamilyInstalled(family: RigFamily): void {
  const binaries = [
    '/usr/bin/patroni',
    '/usr/bin/etcd',
    '/usr/sbin/haproxy',
    `/usr/lib/postgresql/${family.postgresMajor}/bin/postgres`,
  ].map((path) => join(family.lowerDir, path));
  const missing = binaries.filter((path) => !existsSync(path));
  if (missing.length) {
    throw new Error(
      `the ${family.name} node root lacks ${missing.join(', ')}: run "bash rig/setup.sh" as root first`,
    );
  }
}
