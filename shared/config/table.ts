/**
 * README.md's configuration table, generated from the schema (settings.ts) by
 * `npm run docs:config` (scripts/config-table.ts); a unit test fails when README.md differs.
 */
import type { Named, Setting } from './kinds.ts';
import { ALL_SETTINGS } from './settings.ts';

export const TABLE_START = '<!-- config-table:start (generated from shared/config/settings.ts by `npm run docs:config`; edit there) -->';
export const TABLE_END = '<!-- config-table:end -->';

function defaultCell(s: Setting): string {
  if (s.defaultDoc !== undefined) return s.defaultDoc;
  if (s.default === undefined) return 'unset';
  return `\`${String(s.default)}\``;
}

/** The markdown table: one row per setting, or per group of settings documented together. */
export function renderConfigTable(settings: readonly Named[] = ALL_SETTINGS): string {
  const rows: Named[][] = [];
  const rowOf = new Map<string, Named[]>();
  for (const s of settings) {
    const leader = s.sharesRowWith === undefined ? undefined : rowOf.get(s.sharesRowWith);
    if (s.sharesRowWith !== undefined && leader === undefined) throw new Error(`${s.name}.sharesRowWith names ${s.sharesRowWith}, which is not an earlier setting with its own row`);
    if (leader !== undefined) leader.push(s);
    else {
      if (s.doc === undefined) throw new Error(`${s.name} has no doc: every README row needs its meaning`);
      const row = [s];
      rows.push(row);
      rowOf.set(s.name, row);
    }
  }
  const lines = ['| variable | default | meaning |', '|---|---|---|'];
  for (const row of rows) {
    const defaults = row.map(defaultCell);
    const defaultText = defaults.every((d) => d === defaults[0]) ? (defaults[0] ?? '') : defaults.join(', ');
    lines.push(`| ${row.map((s) => `\`${s.name}\``).join(', ')} | ${defaultText} | ${row[0]?.doc ?? ''} |`);
  }
  return lines.join('\n');
}

/** `readme` with the text between the markers replaced by the table; throws when a marker is missing. */
export function withConfigTable(readme: string, table: string = renderConfigTable()): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`README.md has no configuration table markers (${TABLE_START} ... ${TABLE_END})`);
  return `${readme.slice(0, start + TABLE_START.length)}\n${table}\n${readme.slice(end)}`;
}
