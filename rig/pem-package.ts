/**
 * The rig's `edb-pem` package double: EDB's packages cannot be installed
 * here, so the rig builds a Debian package of that name at two versions, each
 * holding the PEM doubles where EDB's packages put the real files
 * (configure-pem-server.sh, the agent, the web application's entry point).
 * PEM nodes get a flat apt repository of both and start at the older one, so
 * the upgrade runbook's `pem` component installs a real package change with
 * apt, as it would from EDB's repository.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeFiles } from './apt';

/** The versions the repository holds: nodes start at `old`; `new` is the upgrade target. */
export const PEM_PACKAGE_VERSIONS = { old: '10.1.0-1', new: '10.2.0-1' } as const;

/** Where a PEM node keeps the repository (in its own layer). */
const NODE_REPO = '/var/lib/pem-ha-rig/edb-pem-apt';
const SOURCE_FILE = '/etc/apt/sources.list.d/pem-ha-rig-edb-pem.list';
const DOUBLES = join(__dirname, 'pem-double');

/** What each version installs, at EDB's paths. */
function packageFiles(version: string): [path: string, mode: number, content: string][] {
  return [
    [
      'usr/edb/pem/bin/configure-pem-server.sh',
      0o755,
      readFileSync(join(DOUBLES, 'configure-pem-server.sh'), 'utf8'),
    ],
    ['usr/edb/pem/agent/bin/pemagent', 0o755, readFileSync(join(DOUBLES, 'pemagent'), 'utf8')],
    [
      'usr/edb/pem/web/pem.wsgi',
      0o644,
      `# PEM web application entry point (pem-ha rig test double), edb-pem ${version}\n`,
    ],
  ];
}

function buildDeb(dir: string, version: string): string {
  const tree = join(dir, `tree-${version}`);
  for (const [path, mode, content] of packageFiles(version)) {
    mkdirSync(join(tree, path, '..'), { recursive: true });
    writeFileSync(join(tree, path), content, { mode });
  }
  mkdirSync(join(tree, 'DEBIAN'));
  writeFileSync(
    join(tree, 'DEBIAN', 'control'),
    [
      'Package: edb-pem',
      `Version: ${version}`,
      'Architecture: all',
      'Maintainer: pem-ha rig <rig@pem-ha.invalid>',
      'Description: Postgres Enterprise Manager (pem-ha rig test double)',
      '',
    ].join('\n'),
  );
  const deb = join(dir, `edb-pem_${version}_all.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '-b', tree, deb], { stdio: 'pipe' });
  rmSync(tree, { recursive: true, force: true });
  return deb;
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** The repository as a gzipped tar (base64): both debs, Packages and Release. */
function repositoryArchive(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pem-ha-edb-pem-'));
  try {
    const stanzas = Object.values(PEM_PACKAGE_VERSIONS).map((version) => {
      const deb = buildDeb(dir, version);
      const file = deb.slice(dir.length + 1);
      const control = execFileSync('dpkg-deb', ['-f', deb], { encoding: 'utf8' }).trim();
      return [
        control,
        `Filename: ./${file}`,
        `Size: ${statSync(deb).size}`,
        `SHA256: ${sha256(readFileSync(deb))}`,
        '',
      ].join('\n');
    });
    const packages = `${stanzas.join('\n')}`;
    writeFileSync(join(dir, 'Packages'), packages);
    writeFileSync(
      join(dir, 'Release'),
      `Date: ${new Date().toUTCString()}\nSHA256:\n ${sha256(packages)} ${Buffer.byteLength(packages)} Packages\n`,
    );
    return execFileSync('tar', ['-C', dir, '-czf', '-', '.']).toString('base64');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

let archive: string | undefined;

/**
 * Gives a PEM node (a backend or web host) what EDB's repository and
 * `apt-get install edb-pem` would: the repository of both versions as its
 * apt source, and the older one installed unless edb-pem already is.
 */
export async function installPemPackage(rig: NodeFiles, node: string): Promise<void> {
  archive ??= repositoryArchive();
  await rig.execOk(
    node,
    [
      'sh',
      '-c',
      'rm -rf "$1" && mkdir -p "$1" && base64 -d | tar -xz -C "$1"',
      'unpack',
      NODE_REPO,
    ],
    archive,
  );
  await rig.writeFile(node, SOURCE_FILE, `deb [trusted=yes] file:${NODE_REPO} ./\n`);
  await rig.execOk(node, [
    'sh',
    '-c',
    'dpkg-query -W edb-pem >/dev/null 2>&1 || dpkg -i "$1/edb-pem_$2_all.deb" >/dev/null',
    'install',
    NODE_REPO,
    PEM_PACKAGE_VERSIONS.old,
  ]);
}
