/**
 * `npm run bench:dedup`: the Node edge's retry dedup store (ADR 0010) alone, on this machine's disk.
 *
 *   npm run bench:dedup                  # 1,000,000 keys; writes the "Retry dedup store" section of docs/BENCHMARKS.md
 *   npm run bench:dedup -- --keys 200000 # smaller (docs not written)
 *
 * Claims 1 M fresh messageIds in requests of 100 (one write transaction each), committing the
 * marks every 2,000 events as the flusher does after an acknowledged flush; then claims them all
 * again (every one a duplicate), then 20,000 single-event requests; then the whole in-process
 * pipeline with the in-memory set and with the store, alternating. Reports CPU µs per event, the
 * store's size on disk per million keys and the process RSS, and the time a rotation holds the
 * write lock while it drops a generation of every key above.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEdgeConfig } from '../../edge/config.ts';
import { dedupKey, openDedupStore } from '../../edge/node/dedup-store.ts';
import { benchDedupCost } from './in-process.ts';
import { BENCH_DIMENSIONS, generateProfile } from './profile.ts';
import { writeBenchmarkSection } from '../write-section.ts';

const arg = process.argv.indexOf('--keys');
const keys = arg > 0 ? Number(process.argv[arg + 1]) : 1_000_000;
const PER_REQUEST = 100;
const PER_FLUSH = 2000;
const dir = mkdtempSync(join(tmpdir(), 'tributary-dedup-bench-'));
const mb = (n: number): string => (n / 1e6).toFixed(1);
/** CPU time of this process in ms (user + system): robust to other processes' load, unlike wall time. */
const cpuMs = (): number => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
// analytics.js style messageIds: "ajs-next-" + 32 hex digits.
const id = (i: number): string => `ajs-next-${i.toString(16).padStart(8, '0')}${'5f3a9c1e'.repeat(3)}`;

const load = loadavg().map((l) => l.toFixed(2)).join(' ');
const startedAt = new Date();
console.log(`load ${load}; ${keys.toLocaleString('en-US')} keys in ${dir}`);
const rssBefore = process.memoryUsage().rss;
// A clock of our own, moved at the end to time a rotation that drops a whole generation.
let clockMs = Date.now();
const WINDOW_MS = 3_600_000;
const store = openDedupStore({ dir, windowMs: WINDOW_MS, now: () => clockMs });
try {
  const ids = new Array<string>(PER_REQUEST);
  let t0 = cpuMs();
  let commitMs = 0;
  for (let i = 0; i < keys; i += PER_REQUEST) {
    for (let j = 0; j < PER_REQUEST; j++) ids[j] = id(i + j);
    const r = store.claim('bench', ids);
    if (r.kind !== 'ok' || r.duplicate.some((d) => d)) throw new Error('fresh ids must be new');
    if ((i + PER_REQUEST) % PER_FLUSH === 0) {
      const c0 = cpuMs();
      store.drained();
      store.acknowledged();
      commitMs += cpuMs() - c0;
    }
  }
  const insertMs = cpuMs() - t0;
  const { bytes } = store.stats();
  const rssAfter = process.memoryUsage().rss;

  t0 = cpuMs();
  for (let i = 0; i < keys; i += PER_REQUEST) {
    for (let j = 0; j < PER_REQUEST; j++) ids[j] = id(i + j);
    const r = store.claim('bench', ids);
    if (r.kind !== 'ok' || r.duplicate.some((d) => !d)) throw new Error('known ids must be duplicates');
  }
  const lookupMs = cpuMs() - t0;

  const singles = 20_000;
  t0 = cpuMs();
  for (let i = 0; i < singles; i++) {
    store.claim('bench', [`single-${i}`]);
    if (i % 20 === 19) {
      store.drained();
      store.acknowledged();
    }
  }
  const singleMs = cpuMs() - t0;

  // The flush journal (ADR 0010, "The flush journal"): per flush, the envelope's records written
  // before the send and deleted with the acknowledgement (two write transactions). Envelope size
  // from the compaction benchmark: about 47 bytes per event (1/22.6 of 1,064 raw bytes), split
  // over 4 partitions.
  const journalUs = (events: number, flushes: number): number => {
    const part = Buffer.alloc(Math.ceil((events * 47) / 4), 7);
    const c0 = cpuMs();
    for (let f = 0; f < flushes; f++) {
      const sequence = 1e12 + f;
      store.journal.put([{ sequence, drain: 1, records: [0, 1, 2, 3].map((partition) => ({ key: `edge-bench#${partition}`, value: part, partition })) }]);
      store.journal.acked(sequence, 1);
    }
    return ((cpuMs() - c0) * 1000) / flushes;
  };
  const journalSmall = journalUs(100, 5000);
  const journalLarge = journalUs(PER_FLUSH, 1000);

  t0 = cpuMs();
  for (let i = 0; i < 200_000; i++) dedupKey('bench', id(i));
  const hashUs = ((cpuMs() - t0) * 1000) / 200_000;

  // The whole pipeline, in-memory set against the store, alternating (CPU time per event).
  const edgeConfig = parseEdgeConfig({ TRIBUTARY_WRITE_KEYS: 'wk_bench:bench', PSEUDONYM_SALT: 'bench-secret-0123456789abcdef', DIMENSIONS: BENCH_DIMENSIONS, COUNTRY_HEADER: 'cf-ipcountry' });
  if (!edgeConfig.ok) throw new Error(edgeConfig.errors.join('\n'));
  const cost = await benchDedupCost(edgeConfig.config, generateProfile({ events: 100_000 }), 5);

  // Two rotations: the first starts generation 2, the second drops generation 1 with every key
  // above in it, inside one write transaction: other processes' claims wait that long.
  clockMs += WINDOW_MS;
  store.maintain();
  clockMs += WINDOW_MS;
  const dropStart = performance.now();
  store.maintain();
  const dropMs = performance.now() - dropStart;
  if (store.stats().generations[0] !== 2) throw new Error('the second rotation must drop generation 1');

  const perMillion = 1e6 / keys;
  const lines = [
    `pipeline CPU per event (parse → … → dedup → accumulate, 100-event batches, median of 5 alternating runs): ${cost.memoryUsPerEvent.toFixed(1)} µs with the in-memory set, ${cost.storeUsPerEvent.toFixed(1)} µs with the shared store (+${(cost.storeUsPerEvent - cost.memoryUsPerEvent).toFixed(1)} µs, ×${(cost.storeUsPerEvent / cost.memoryUsPerEvent).toFixed(2)}); runs ${cost.memoryRuns.map((x) => x.toFixed(1)).join(', ')} vs ${cost.storeRuns.map((x) => x.toFixed(1)).join(', ')}`,
    `CPU: new events, requests of ${PER_REQUEST}: ${((insertMs * 1000) / keys).toFixed(2)} µs/event (of which recording the acknowledgement after each ${PER_FLUSH}-event flush: ${((commitMs * 1000) / keys).toFixed(2)} µs/event)`,
    `retries (all duplicates), requests of ${PER_REQUEST}: ${((lookupMs * 1000) / keys).toFixed(2)} µs/event`,
    `single-event requests (new): ${((singleMs * 1000) / singles).toFixed(1)} µs/request (one write transaction each)`,
    `flush journal (write the envelope's records before the send, delete them with the acknowledgement): ${journalSmall.toFixed(1)} µs per flush of 100 events (${(journalSmall / 100).toFixed(2)} µs/event), ${journalLarge.toFixed(1)} µs per flush of ${PER_FLUSH} events (${(journalLarge / PER_FLUSH).toFixed(2)} µs/event)`,
    `key hash (SHA-256, first 16 bytes): ${hashUs.toFixed(2)} µs/event (included above)`,
    `disk: ${mb(bytes * perMillion)} MB per million keys (${bytes.toLocaleString('en-US')} bytes for ${keys.toLocaleString('en-US')} keys); the store holds up to 2 × DEDUP_WINDOW_MS of keys`,
    `RSS: +${mb((rssAfter - rssBefore) * perMillion)} MB per million keys (SQLite's page cache of the connection, 2 MB by default, and heap; the file's pages are in the OS page cache, shared and reclaimable)`,
    `rotation dropping a generation of ${(keys + singles).toLocaleString('en-US')} keys: ${dropMs.toFixed(0)} ms wall time holding the store's write lock (claims of other processes wait meanwhile)`,
  ];
  for (const l of lines) console.log(l);
  if (keys === 1_000_000) {
    const path = writeBenchmarkSection(
      'Retry dedup store',
      `## Retry dedup store

\`npm run bench:dedup\` — ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${availableParallelism()} CPUs, Node ${process.version}, load average at start ${load}
(the machine was shared with other test runs: compare figures taken at the same time, not across sections).
The Node edge's on-disk store (SQLite in WAL mode, edge/node/dedup-store.ts, ADR 0010) alone: ${keys.toLocaleString('en-US')} fresh analytics.js-style messageIds
claimed in requests of ${PER_REQUEST} (one write transaction each), the acknowledgement recorded every ${PER_FLUSH} events as the flusher does; then the
same ids again (all duplicates); then ${singles.toLocaleString('en-US')} single-event requests.

${lines.map((l) => `- ${l}`).join('\n')}
`,
    );
    console.log(`written to ${path}`);
  }
} finally {
  store.close();
  rmSync(dir, { recursive: true, force: true });
}
