/**
 * The Node edge's retry dedup store under sustained writes from three processes (ADR 0010,
 * "Several processes"): each claims 100 fresh ids per request and journals, then deletes, one
 * envelope per flush, as an edge process under `npm run bench:edge` does. The LMDB store of
 * earlier versions failed such transactions now and then under this load (MDB_NOTFOUND,
 * "mdb_page_alloc error"); the store must answer every claim (no 503 `dedup_unavailable`) and
 * log no `dedup_store_failed`.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const CHILD = join(import.meta.dirname, 'fixtures/dedup-load-child.ts');
const work = mkdtempSync(join(tmpdir(), 'tributary-dedup-load-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Counts {
  requests: number;
  answered: number;
  journaled: number;
}

function start(dir: string, startAtMs: number, runMs: number): Promise<{ code: number | null; counts: Counts | undefined; events: Array<{ event: string; op?: string; error?: string }> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, String(startAtMs), String(runMs), '20000'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return once(child, 'exit').then(([code]) => ({
    code: code as number | null,
    counts: out.trim() === '' ? undefined : (JSON.parse(out.trim()) as Counts),
    events: err
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event: string; op?: string; error?: string }),
  }));
}

describe('dedup store under sustained writes from three processes', () => {
  it('answers every claim and journals every envelope, without a store failure', async () => {
    const dir = join(work, 'dedup');
    const startAt = Date.now() + 3000;
    const runs = await Promise.all([0, 1, 2].map(() => start(dir, startAt, 10_000)));
    for (const r of runs) {
      expect(r.code).toBe(0);
      expect(r.events.filter((e) => e.event === 'dedup_store_failed')).toEqual([]);
      const c = r.counts as Counts;
      // Enough load to matter: the failures showed up after a few thousand transactions.
      expect(c.requests).toBeGreaterThan(500);
      expect({ answered: c.answered, journaled: c.journaled }).toEqual({ answered: c.requests, journaled: c.requests });
    }
  }, 60_000);
});
