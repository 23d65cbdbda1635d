/**
 * Apt on rig nodes: a local repository that rig/setup.sh builds with two
 * PostgreSQL 15 minors (the host runs the older, so every node starts there),
 * and the node configuration that makes `apt-get update` read only that
 * repository (nodes have no route out; the host's network sources would only
 * fail, slowly).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Shared by every rig (outside the per-rig state); rig/setup.sh writes the same path. */
export const RIG_APT_REPO = '/var/cache/pem-ha-rig/apt';
const VERSIONS_FILE = join(RIG_APT_REPO, 'versions.env');
/** The node's only apt source: the repository, through the overlay's view of the host. */
const SOURCE_FILE = '/etc/apt/sources.list.d/pem-ha-rig.list';
/** Where a node keeps the host's sources it hides (apt does not read this directory). */
const HIDDEN_SOURCES = '/etc/apt/sources-hidden-by-pem-ha-rig';
const SETUP_HINT = 'run "bash rig/setup.sh" as root first';

export interface RigPostgresVersions {
  /** The version the host (and so every new node) runs, e.g. 15.18-0+deb12u1. */
  readonly old: string;
  /** The upgrade target the repository also holds, e.g. 15.20-0+deb12u1. */
  readonly new: string;
  /**
   * True when Debian served a single minor and `new` is a re-versioned copy
   * of `old`: the package changes, the server's version number does not.
   */
  readonly rebuilt: boolean;
  /** The packages the repository holds at both versions (postgresql-15, postgresql-client-15, libpq5, ...). */
  readonly packages: readonly string[];
}

/** The two PostgreSQL versions of the rig's apt repository (from its versions.env). */
export function rigPostgresVersions(file = VERSIONS_FILE): RigPostgresVersions {
  if (!existsSync(file)) {
    throw new Error(`${file} is missing (the rig's local apt repository): ${SETUP_HINT}`);
  }
  const values: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (match) values[match[1]] = match[2].replace(/^(['"])(.*)\1$/, '$2');
  }
  const { OLD: old, NEW: next } = values;
  if (!old || !next) throw new Error(`${file} names no OLD and NEW version: ${SETUP_HINT}`);
  return {
    old,
    new: next,
    rebuilt: values.NEW_SOURCE === 'rebuilt',
    packages: (values.PACKAGES ?? 'postgresql-15,postgresql-client-15,libpq5').split(','),
  };
}

/** Throws, telling to run rig/setup.sh, unless the repository is there. */
export function assertRigAptRepo(): void {
  for (const file of ['Packages', 'Release', 'versions.env']) {
    if (!existsSync(join(RIG_APT_REPO, file))) {
      throw new Error(
        `the rig's local apt repository ${RIG_APT_REPO} has no ${file}: ${SETUP_HINT}`,
      );
    }
  }
}

/** What {@link configureNodeApt} needs of the rig (RigCluster's helpers). */
export interface NodeFiles {
  execOk(node: string, argv: string[], stdin?: string, timeoutMs?: number): Promise<string>;
  writeFile(node: string, path: string, content: string, mode?: string): Promise<void>;
}

/**
 * Points a node's apt at the local repository only (or, with `withRepository`
 * false, at nothing): moves the root's sources aside inside the node's layer
 * (the host's files are untouched) and adds the repository as the one source.
 * Idempotent.
 */
export async function configureNodeApt(
  rig: NodeFiles,
  node: string,
  withRepository: boolean,
): Promise<void> {
  const hide = [
    'set -e',
    'mkdir -p "$1"',
    'for source in /etc/apt/sources.list /etc/apt/sources.list.d/*; do',
    '  if [ -e "$source" ] && [ "$source" != "$2" ]; then mv "$source" "$1/"; fi',
    'done',
  ].join('\n');
  await rig.execOk(node, ['sh', '-c', hide, 'hide-sources', HIDDEN_SOURCES, SOURCE_FILE]);
  if (!withRepository) return;
  assertRigAptRepo();
  await rig.writeFile(node, SOURCE_FILE, `deb [trusted=yes] file:${RIG_APT_REPO} ./\n`);
}
