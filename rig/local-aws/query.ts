/**
 * The AWS query protocols (EC2's and the one ELBv2 shares with other older
 * services): a form-urlencoded POST naming Action and Version, answered in
 * XML. Helpers to read the flattened lists of the request and to write XML.
 */

/** Escapes text for an XML element. */
export function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** `<name>…</name>`: children given as an array are joined; text is escaped. */
export function element(name: string, content: string | number | readonly string[]): string {
  const inner = Array.isArray(content) ? content.join('') : escapeXml(String(content));
  return `<${name}>${inner}</${name}>`;
}

/** Each `<item>` (EC2) or `<member>` (ELBv2) of a list, from each one's XML. */
export const listOf = (tag: 'item' | 'member', items: readonly string[]): string[] =>
  items.map((item) => element(tag, [item]));

/**
 * The values of a flattened list parameter, in index order: `Prefix.1`,
 * `Prefix.2`… (`InstanceId.N`, `Filter.N.Value.M`, `Targets.member.N.Id`).
 * `suffix` reads a field of each entry (`Name` of `Filter.N.Name`).
 */
export function indexedValues(params: URLSearchParams, prefix: string, suffix = ''): string[] {
  const pattern = new RegExp(
    `^${prefix.replace(/\./g, '\\.')}\\.(\\d+)${suffix && `\\.${suffix}`}$`,
  );
  return [...params.entries()]
    .map(([key, value]) => [Number(pattern.exec(key)?.[1]), value] as const)
    .filter(([index]) => Number.isInteger(index))
    .sort(([a], [b]) => a - b)
    .map(([, value]) => value);
}

/** The indexes `Prefix.N` uses (to read several fields of each entry). */
export function indexes(params: URLSearchParams, prefix: string): number[] {
  const pattern = new RegExp(`^${prefix.replace(/\./g, '\\.')}\\.(\\d+)\\.`);
  const found = [...params.keys()].map((key) => Number(pattern.exec(key)?.[1]));
  return [...new Set(found.filter((index) => Number.isInteger(index)))].sort((a, b) => a - b);
}

/** EC2 filter values: `*` matches any run of characters, `?` one character. */
export function matchesWildcard(pattern: string, value: string): boolean {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${escaped.replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's').test(value);
}
