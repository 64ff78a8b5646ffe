/**
 * Reproduces failures of the retry dedup store (ADR 0010) under write load: `processes` child
 * processes open one fresh DEDUP_DIR and each, for `ms` milliseconds, claims 100 fresh
 * messageIds per write transaction, journals one envelope of `journalBytes` (0: no journal) and
 * acknowledges it (put, then delete: the flush journal's pattern), and records its drain, as
 * the Node edge does per request and flush. Prints every `dedup_store_failed` event (LMDB
 * errors; the edge answers those requests 503 `dedup_unavailable`) and the count per process.
 *
 *   npx tsx bench/edge/dedup-store-stress.ts [processes=2] [ms=6000] [journalBytes=20000] [rounds=5]
 *
 * Not a test: the failures it looks for are intermittent (a few per minute of load on the
 * machine where it was written, with lmdb 3.5.6), so it reports counts rather than asserting.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDedupStore } from '../../edge/node/dedup-store.ts';

const CHILD = '--child';

async function child(dir: string, ms: number, journalBytes: number): Promise<void> {
  let failures = 0;
  const store = openDedupStore({
    dir,
    windowMs: 3_600_000,
    log: (e) => {
      if (e.event === 'dedup_store_failed') failures++;
      process.stderr.write(`${JSON.stringify({ pid: process.pid, ...e })}\n`);
    },
  });
  const end = Date.now() + ms;
  let n = 0;
  let unanswered = 0;
  while (Date.now() < end) {
    // Between event-loop turns, as requests are: lmdb-js renews its read snapshot there.
    await new Promise((r) => setImmediate(r));
    n++;
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) ids.push(`${process.pid}-${n}-${i}`);
    if (store.claim('site', ids).kind !== 'ok') unanswered++;
    store.drained();
    if (journalBytes > 0) {
      try {
        store.journal.put([{ sequence: n, drain: store.journal.drain(), records: [{ key: 'k', value: Buffer.alloc(journalBytes + (n % 7) * 1500, 1) }] }]);
        store.journal.acked(n, store.journal.drain());
      } catch {
        // Logged by the store.
      }
    }
    store.acknowledged();
  }
  store.close();
  process.stdout.write(`${JSON.stringify({ pid: process.pid, requests: n, unanswered, failures })}\n`);
}

async function main(): Promise<void> {
  const [processes = 2, ms = 6000, journalBytes = 20_000, rounds = 5] = process.argv.slice(2).map(Number);
  let total = 0;
  for (let round = 1; round <= rounds; round++) {
    const dir = mkdtempSync(join(tmpdir(), 'tributary-dedup-stress-'));
    const runs = Array.from({ length: processes }, () => {
      const c = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), CHILD, join(dir, 'dedup'), String(ms), String(journalBytes)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      return once(c, 'exit').then(() => out);
    });
    const outs = await Promise.all(runs);
    const failures = outs.reduce((s, o) => s + (o === '' ? 1 : (JSON.parse(o) as { failures: number }).failures), 0);
    total += failures;
    console.log(`round ${round}: ${outs.map((o) => o.trim()).join(' ')}`);
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`store failures over ${rounds} rounds of ${processes} processes × ${ms} ms (journal ${journalBytes} bytes): ${total}`);
}

if (process.argv[2] === CHILD) await child(process.argv[3] as string, Number(process.argv[4]), Number(process.argv[5]));
else await main();
