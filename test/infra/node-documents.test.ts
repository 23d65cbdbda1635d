import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRestoreRequest } from '../../functions/restore/request';
import { resourcesOf, synthStack } from '../helpers/synth';

interface DocumentParameterSpec {
  type: string;
  default?: string | Record<string, unknown>;
  allowedPattern?: string;
  allowedValues?: string[];
}
interface DocumentContent {
  schemaVersion: string;
  parameters: Record<string, DocumentParameterSpec>;
  mainSteps: {
    action: string;
    name: string;
    inputs: { runCommand: string[]; timeoutSeconds: string };
  }[];
}

/** The synthesized node documents by name (`pem-ha-patroni`, ...). */
function documentsOf(settings: Record<string, unknown> = {}): Map<string, DocumentContent> {
  const { template } = synthStack(settings);
  const documents = resourcesOf(template, 'AWS::SSM::Document');
  return new Map(
    Object.values(documents).map((resource) => [
      resource.Properties.Name as string,
      resource.Properties.Content as DocumentContent,
    ]),
  );
}

const scriptOf = (content: DocumentContent) => content.mainSteps[0].inputs.runCommand.join('\n');
const DEFAULT_DOCUMENTS = documentsOf();

describe('node documents', () => {
  test('Given the default configuration, then every node document is synthesized', () => {
    expect([...DEFAULT_DOCUMENTS.keys()].sort()).toEqual([
      'pem-ha-backup',
      'pem-ha-certificates',
      'pem-ha-common',
      'pem-ha-etcd',
      'pem-ha-etcd-quorum',
      'pem-ha-failover',
      'pem-ha-metrics',
      'pem-ha-patroni',
      'pem-ha-pem-backend',
      'pem-ha-pem-web',
      'pem-ha-restore',
      'pem-ha-upgrade',
    ]);
  });

  test('Given every target the restore function produces, then the patroni document accepts it, and nothing that could leave the quotes', () => {
    const { RestoreTarget, RestoreSet } = DEFAULT_DOCUMENTS.get('pem-ha-patroni')!.parameters;
    const accepts = (pattern: string | undefined, value: string) =>
      new RegExp(pattern ?? '^$').test(value);
    const now = new Date('2026-12-03T12:00:00Z');
    const produced = [
      { time: '2026-12-03T10:15:30.25+01:00' },
      { lsn: '1/a000200' },
      { restorePoint: 'before-migration_7' },
      { latest: true },
    ].map((input) => parseRestoreRequest({ confirm: 'pem-ha', ...input }, 'pem-ha', now).target);
    for (const target of [...produced, 'none']) {
      expect({ target, accepted: accepts(RestoreTarget.allowedPattern, target) }).toEqual({
        target,
        accepted: true,
      });
    }
    expect(accepts(RestoreTarget.allowedPattern, "name=x' ; rm -rf /")).toBe(false);
    expect(RestoreTarget.default).toBe('none');
    for (const set of ['latest', '20261201-000000F', '20261201-000000F_20261202-000000D']) {
      expect(accepts(RestoreSet.allowedPattern, set)).toBe(true);
    }
  });

  test('Given PEM disabled, then there are no PEM documents and no PEM rules by default', () => {
    const documents = documentsOf({ pemEnabled: false });
    expect(documents.has('pem-ha-pem-backend')).toBe(false);
    expect(documents.has('pem-ha-pem-web')).toBe(false);
    expect(documents.get('pem-ha-patroni')!.parameters.PemEnabled.default).toBe('false');
    expect(documents.get('pem-ha-patroni')!.parameters.WebAddresses.default).toBe('');
  });

  test.each([...DEFAULT_DOCUMENTS])(
    '%s is one aws:runShellScript step of plain JSON that leaves room for parameters',
    (_name, content) => {
      expect(content.schemaVersion).toBe('2.2');
      expect(content.mainSteps).toHaveLength(1);
      expect(content.mainSteps[0].action).toBe('aws:runShellScript');
      // No CloudFormation functions in the script: the rig and SSM run the same text.
      // Only a parameter's default may be a deploy-time value (the backup bucket's name).
      expect(JSON.stringify(content.mainSteps)).not.toMatch(/"(Fn::|Ref)"/);
      // SSM's 64 KB limit counts the runtime parameters too: half of it for the
      // certificates document, whose parameters carry certificate chains; the
      // others take names, addresses and numbers.
      const bound = _name.endsWith('-certificates') ? 32 * 1024 : 48 * 1024;
      expect(JSON.stringify(content).length).toBeLessThan(bound);
    },
  );

  test.each([...DEFAULT_DOCUMENTS])(
    '%s starts in bash although SSM runs it with sh, strict mode on',
    (_name, content) => {
      const lines = content.mainSteps[0].inputs.runCommand;
      expect(lines[0]).toBe('#!/bin/bash');
      expect(lines).toContain('if [ -z "${BASH_VERSION:-}" ]; then exec /bin/bash "$0" "$@"; fi');
      expect(lines.indexOf('set -euo pipefail')).toBeLessThan(
        lines.findIndex((l) => l.includes('{{')),
      );
    },
  );

  test.each([...DEFAULT_DOCUMENTS])(
    '%s uses exactly its declared parameters, each as one single-quoted assignment',
    (_name, content) => {
      const script = scriptOf(content);
      const used = new Set([...script.matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]));
      expect([...used].sort()).toEqual(Object.keys(content.parameters).sort());
      for (const name of used) {
        const assignments = script.match(new RegExp(`^[A-Z_]+='\\{\\{ ${name} \\}\\}'$`, 'gm'));
        expect(assignments).toHaveLength(1);
      }
    },
  );

  test.each([...DEFAULT_DOCUMENTS])(
    '%s refuses parameter values that could escape their quotes',
    (_name, content) => {
      for (const [name, spec] of Object.entries(content.parameters)) {
        for (const hostile of ["a'b", 'a$(id)', 'a`id`', 'a\nb', 'a;b c']) {
          const accepted = spec.allowedValues
            ? spec.allowedValues.includes(hostile)
            : new RegExp(spec.allowedPattern!).test(hostile);
          expect({ name, hostile, accepted }).toEqual({ name, hostile, accepted: false });
        }
        // A deploy-time default (an intrinsic) is checked by SSM when a command runs.
        if (typeof spec.default === 'string' && spec.allowedPattern) {
          expect(spec.default).toMatch(new RegExp(spec.allowedPattern));
        }
      }
    },
  );

  test('Given the synthesized scripts, then shellcheck finds nothing in any of them, nor in the scripts they install', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pem-ha-docs-'));
    try {
      const files = [...DEFAULT_DOCUMENTS].flatMap(([name, content]) => {
        const script = scriptOf(content);
        // A quoted heredoc that starts with a shebang is a script the document installs.
        const installed = [...script.matchAll(/<<'([A-Z]+)'\n(#!\/bin\/bash\n[\s\S]*?)\n\1\n/g)];
        const texts: [string, string][] = [
          [name, script],
          ...installed.map(([, marker, text]): [string, string] => [`${name}-${marker}`, text]),
        ];
        return texts.map(([file, text]) => {
          const path = join(dir, `${file}.sh`);
          writeFileSync(path, text);
          return path;
        });
      });
      expect(files.some((file) => file.endsWith('pem-ha-metrics-COLLECTOR.sh'))).toBe(true);
      // Throws with shellcheck's report when it finds anything (exit code 1).
      const report = execFileSync('shellcheck', ['--severity=style', ...files], {
        encoding: 'utf8',
      });
      expect(report).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('Given settings, then they become the documents defaults', () => {
    const documents = documentsOf({
      patroniTtl: '40',
      patroniLoopWait: '5',
      synchronousMode: 'false',
      clusterName: 'pem-prod',
      databaseClientCidrs: '192.168.10.0/24',
    });
    const patroni = documents.get('pem-prod-patroni')!.parameters;
    expect(patroni.Ttl.default).toBe('40');
    expect(patroni.LoopWait.default).toBe('5');
    expect(patroni.SynchronousMode.default).toBe('false');
    expect(patroni.ClusterName.default).toBe('pem-prod');
    expect(patroni.ClientCidrs.default).toBe('192.168.10.0/24');
    expect(patroni.SecretPrefix.default).toBe('pem-prod');
    expect(patroni.EtcdHosts.default).toBe('10.40.3.10:2379,10.40.4.10:2379,10.40.5.10:2379');
    expect(patroni.BackendAddresses.default).toBe('10.40.3.20,10.40.4.20,10.40.5.20');
    expect(patroni.TrustedCidrs.default).toBe('10.40.3.0/24,10.40.4.0/24,10.40.5.0/24');
    // pemsuper's only sources besides the backends: the web hosts' fixed addresses
    expect(patroni.WebAddresses.default).toBe('10.40.3.30,10.40.4.30');
    expect(documents.get('pem-prod-etcd')!.parameters.InitialCluster.default).toBe(
      'etcd-1=https://10.40.3.10:2380,etcd-2=https://10.40.4.10:2380,etcd-3=https://10.40.5.10:2380',
    );
  });

  test.each([
    [100, { MaxWalSizeMib: '10240', MaxSlotWalKeepMib: '20480', SpaceReserveMib: '2048' }],
    [20, { MaxWalSizeMib: '2048', MaxSlotWalKeepMib: '4096', SpaceReserveMib: '409' }],
    [1000, { MaxWalSizeMib: '16384', MaxSlotWalKeepMib: '204800', SpaceReserveMib: '4096' }],
  ])(
    'Given a %i GiB data volume, then WAL and the space reserve are sized from it, leaving room beside the archive queue (half)',
    (size, expected) => {
      const patroni = documentsOf({ dataVolumeSizeGiB: String(size) }).get('pem-ha-patroni')!;
      for (const [name, value] of Object.entries(expected)) {
        expect({ name, value: patroni.parameters[name].default }).toEqual({ name, value });
      }
      const sum = Object.values(expected).reduce((total, value) => total + Number(value), 0);
      const archiveQueueMib = Number(patroni.parameters.ArchivePushQueueMaxGib.default) * 1024;
      expect(sum + archiveQueueMib).toBeLessThan(size * 1024);
    },
  );

  test('Given per-node parameters, then they have no default and must be passed', () => {
    const patroni = DEFAULT_DOCUMENTS.get('pem-ha-patroni')!.parameters;
    for (const name of ['MemberName', 'MemberAddress', 'DataVolumeId']) {
      expect(patroni[name].default).toBeUndefined();
    }
    expect(patroni.Bootstrap).toMatchObject({ default: 'false', allowedValues: ['true', 'false'] });
  });

  test('Given the documents, then they name secrets but hold no secret value', () => {
    const patroni = scriptOf(DEFAULT_DOCUMENTS.get('pem-ha-patroni')!);
    expect(patroni).toContain('fetch_secret "${SECRET_PREFIX}/patroniSuperuser" password');
    for (const [, content] of DEFAULT_DOCUMENTS) {
      expect(JSON.stringify(content.parameters)).not.toMatch(/password/i);
    }
  });
});
