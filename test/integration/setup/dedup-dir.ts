import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];
process.once('exit', () => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/**
 * A fresh `DEDUP_DIR` for an edge under test (removed when the test process exits): the default
 * `./data/dedup` would carry retry marks from one test run into the next.
 */
export function tempDedupDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tributary-test-dedup-'));
  made.push(d);
  return d;
}
