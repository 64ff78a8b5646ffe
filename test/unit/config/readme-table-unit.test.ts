import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ALL_SETTINGS } from '../../../shared/config/index.ts';
import { TABLE_END, TABLE_START, renderConfigTable, withConfigTable } from '../../../shared/config/table.ts';

const README = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

describe("README.md's configuration table", () => {
  it('is the table the schema generates (run `npm run docs:config` after changing shared/config/settings.ts)', () => {
    const expected = withConfigTable(README);
    // Not toEqual on the whole file: the message says what to do rather than printing two READMEs.
    if (expected !== README) expect.fail('README.md configuration table differs from shared/config/settings.ts: run `npm run docs:config` and commit README.md');
    expect(README).toContain(TABLE_START);
    expect(README).toContain(TABLE_END);
  });

  it('lists every setting of the schema', () => {
    const table = README.slice(README.indexOf(TABLE_START), README.indexOf(TABLE_END));
    for (const s of ALL_SETTINGS) expect(table, s.name).toContain(`\`${s.name}\``);
  });

  it('joins the settings of a shared row and refuses a row without its meaning', () => {
    const lines = renderConfigTable().split('\n');
    expect(lines).toContain('| `SALT_EPOCH_MS`, `SALT_RETENTION_EPOCHS` | `86400000` (a day), `2` | ' + (ALL_SETTINGS.find((s) => s.name === 'SALT_EPOCH_MS')?.doc ?? '') + ' |');
    expect(() => renderConfigTable([{ kind: 'whole', name: 'X_MS', default: 1, min: 0, max: 2, processes: ['gateway'] }])).toThrow(/X_MS has no doc/);
  });
});
