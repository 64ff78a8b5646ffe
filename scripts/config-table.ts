/**
 * `npm run docs:config`: rewrites README.md's configuration table (between its markers) from the
 * schema in shared/config/settings.ts. `--check` only says whether README.md is up to date.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { withConfigTable } from '../shared/config/table.ts';

const README = fileURLToPath(new URL('../README.md', import.meta.url));
const current = readFileSync(README, 'utf8');
const next = withConfigTable(current);
if (process.argv.includes('--check')) {
  if (next !== current) {
    console.error('README.md configuration table is out of date: run `npm run docs:config`');
    process.exit(1);
  }
} else if (next !== current) {
  writeFileSync(README, next);
  console.log('README.md configuration table rewritten from shared/config/settings.ts');
} else {
  console.log('README.md configuration table is up to date');
}
