/**
 * Renders the README's configuration table from SETTINGS.
 *
 *   tsx scripts/config-table.ts           print the table
 *   tsx scripts/config-table.ts --write   replace the table in README.md
 *   tsx scripts/config-table.ts --check   exit 1 if README.md's table is out of date
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SETTINGS } from '../infra/config/schema';
import type { Setting } from '../infra/config/setting';

export const TABLE_START = '<!-- config-table:start -->';
export const TABLE_END = '<!-- config-table:end -->';
export const README_PATH = join(__dirname, '..', 'README.md');

/** Makes text safe for one markdown table cell (also inside code spans, per GFM). */
function cell(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
}

function code(text: string): string {
  return `\`${text}\``;
}

/** The markdown table of every setting, without a trailing newline. */
export function renderConfigTable(): string {
  const rows = Object.entries(SETTINGS).map(([name, setting]: [string, Setting<unknown>]) => {
    const defaultText =
      setting.defaultValue !== undefined
        ? code(JSON.stringify(setting.defaultValue))
        : (setting.defaultText ?? '—');
    return `| ${[code(name), defaultText, setting.allowed, setting.description].map(cell).join(' | ')} |`;
  });
  return [
    '| Setting | Default | Allowed | Description |',
    '| --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

function markerPositions(readme: string): { start: number; end: number } {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start === -1 || end === -1 || end < start) {
    throw new Error(
      `README.md must contain the markers ${TABLE_START} and ${TABLE_END}, in that order, around the configuration table`,
    );
  }
  return { start: start + TABLE_START.length, end };
}

/** The text between the markers, without surrounding blank lines; throws if they are missing. */
export function extractConfigTable(readme: string): string {
  const { start, end } = markerPositions(readme);
  return readme.slice(start, end).trim();
}

/** README text with `table` between the markers; throws if they are missing. */
export function replaceConfigTable(readme: string, table: string): string {
  const { start, end } = markerPositions(readme);
  return `${readme.slice(0, start)}\n\n${table}\n\n${readme.slice(end)}`;
}

function main(args: readonly string[]): number {
  const table = renderConfigTable();
  if (args.length === 0) {
    console.log(table);
    return 0;
  }
  if (args.length !== 1 || !['--write', '--check'].includes(args[0])) {
    console.error('usage: tsx scripts/config-table.ts [--write | --check]');
    return 2;
  }
  const readme = readFileSync(README_PATH, 'utf8');
  const updated = replaceConfigTable(readme, table);
  if (args[0] === '--check') {
    if (updated === readme) return 0;
    console.error('README.md configuration table is out of date: run `npm run docs:config`');
    return 1;
  }
  if (updated !== readme) writeFileSync(README_PATH, updated);
  console.log(
    `README.md configuration table ${updated === readme ? 'already up to date' : 'updated'}`,
  );
  return 0;
}

if (require.main === module) {
  try {
    process.exit(main(process.argv.slice(2)));
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
}
