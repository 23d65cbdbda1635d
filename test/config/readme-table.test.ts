import { readFileSync } from 'node:fs';
import {
  extractConfigTable,
  README_PATH,
  renderConfigTable,
  replaceConfigTable,
  TABLE_END,
  TABLE_START,
} from '../../scripts/config-table';
import { SETTINGS } from '../../infra/config/schema';

describe('configuration table', () => {
  it('has one row per setting, code-formatted, with escaped pipes', () => {
    // Given the schema
    // When the table is rendered
    const lines = renderConfigTable().split('\n');
    // Then it has a header, a separator and a row per setting in schema order
    expect(lines.slice(0, 2)).toEqual([
      '| Setting | Default | Allowed | Description |',
      '| --- | --- | --- | --- |',
    ]);
    expect(lines.slice(2).map((line) => /^\| `(\w+)` \|/.exec(line)?.[1])).toEqual(
      Object.keys(SETTINGS),
    );
    expect(lines).toContain(
      `| \`etcdNodeCount\` | \`3\` | an odd integer from 3 to 7 | ${SETTINGS.etcdNodeCount.description} |`,
    );
    expect(lines).toContain(`| \`account\` | — | 12 digits | ${SETTINGS.account.description} |`);
    expect(lines.find((line) => line.startsWith('| `databaseClientCidrs` |'))).toMatch(
      /^\| `databaseClientCidrs` \| `\[\]` \| IPv4 CIDRs/,
    );
    expect(lines.find((line) => line.startsWith('| `edbRepoTokenSecretName` |'))).toMatch(
      /^\| `edbRepoTokenSecretName` \| `"pem-ha\/edb-repo-token"` \|/,
    );
    // And no cell contains an unescaped pipe: every row has exactly five separators
    for (const line of lines) {
      expect(line.replace(/\\\|/g, '').split('|')).toHaveLength(6);
    }
  });

  it('replaces only the text between the markers', () => {
    // Given a README with an old table between the markers
    const readme = `# x\n\n${TABLE_START}\nold\n${TABLE_END}\n\nafter\n`;
    // When the table is replaced
    const updated = replaceConfigTable(readme, '| a |');
    // Then the rest is kept and the table can be read back
    expect(updated).toBe(`# x\n\n${TABLE_START}\n\n| a |\n\n${TABLE_END}\n\nafter\n`);
    expect(extractConfigTable(updated)).toBe('| a |');
    expect(replaceConfigTable(updated, '| a |')).toBe(updated);
  });

  it('refuses a README without the markers', () => {
    // Given a README without markers
    // When the table is replaced
    // Then the error names the missing markers
    expect(() => replaceConfigTable('# x\n', '| a |')).toThrow(
      `README.md must contain the markers ${TABLE_START} and ${TABLE_END}`,
    );
  });

  it('README.md holds the table generated from SETTINGS', () => {
    // Given README.md
    let readme: string;
    try {
      readme = readFileSync(README_PATH, 'utf8');
    } catch (error) {
      throw new Error(`cannot read README.md (${(error as Error).message})`, { cause: error });
    }
    // When its table is read
    if (!readme.includes(TABLE_START) || !readme.includes(TABLE_END)) {
      throw new Error(
        `README.md has no configuration table markers: add ${TABLE_START} and ${TABLE_END}, then run \`npm run docs:config\``,
      );
    }
    const table = extractConfigTable(readme);
    // Then it is the table the schema renders
    if (table !== renderConfigTable()) {
      throw new Error(
        'README.md configuration table differs from infra/config/schema.ts: run `npm run docs:config`',
      );
    }
  });
});
