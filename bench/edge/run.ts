/**
 * `npm run bench:edge`: the edge benchmarks of issue #3, on a generated realistic profile, with
 * the results written to the "Edge" section of docs/BENCHMARKS.md (other sections are kept).
 *
 *   npm run bench:edge             # full run (about 3 minutes)
 *   npm run bench:edge -- --quick  # smaller and shorter, for a smoke check (docs not written)
 *
 * The machine is shared and noisy: every figure is a median over several runs, and the
 * in-process throughput is quoted as a ratio to JSON.parse measured in the same run.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { parseEdgeConfig } from '../../edge/config.ts';
import { benchHttp, type HttpRunResult, type ServerReport } from './http.ts';
import { benchCompaction, benchInProcess } from './in-process.ts';
import { BENCH_DIMENSIONS, generateProfile } from './profile.ts';
import { writeBenchmarkSection } from '../write-section.ts';

const quick = process.argv.includes('--quick');
const EDGE_ENV = {
  TRIBUTARY_WRITE_KEYS: 'wk_bench:bench',
  PSEUDONYM_SALT: 'bench-secret-0123456789abcdef',
  DIMENSIONS: BENCH_DIMENSIONS,
  COUNTRY_HEADER: 'cf-ipcountry',
};
// Default flush settings: FLUSH_INTERVAL_MS=1000, and a request waiting for its acknowledgement
// triggers a flush COMMIT_DELAY_MS (20) later, shared by the requests arriving meanwhile.
const HTTP_ENV = { ...EDGE_ENV };
const TARGETS = { ratio: 0.35, batchEventsPerS: 50_000, beaconRequestsPerS: 8000, compaction: 1 / 20 };

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const mark = (ok: boolean): string => (ok ? 'met' : '**missed**');

function machine(): { cpus: number; cpu: string; node: string; load: string } {
  let cpu = 'unknown';
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    // not Linux
  }
  return { cpus: availableParallelism(), cpu, node: process.version, load: loadavg().map((l) => l.toFixed(2)).join(' ') };
}

const config = parseEdgeConfig(EDGE_ENV);
if (!config.ok) throw new Error(config.errors.join('\n'));
const m = machine();
const startedAt = new Date();
console.log(`machine: ${m.cpus} CPUs, ${m.cpu}, Node ${m.node}, load ${m.load}`);

const profile = generateProfile({ events: quick ? 20_000 : 100_000 });
const requestBytes = profile.batches.reduce((n, b) => n + b.byteLength, 0);
console.log(`profile: ${fmt(profile.events)} events in ${profile.batches.length} batches, ${(requestBytes / profile.events).toFixed(0)} bytes per event`);

const inProcess = await benchInProcess(config.config, profile, quick ? 3 : 9);
console.log(`(a) in process: pipeline ${fmt(inProcess.pipelineEventsPerS)} events/s, JSON.parse ${fmt(inProcess.jsonParseEventsPerS)} events/s, ratio ${inProcess.ratio.toFixed(3)}`);

const compaction = [await benchCompaction(config.config, profile, 1000), await benchCompaction(config.config, profile, 10_000)];
for (const c of compaction) console.log(`(c) compaction at FLUSH_INTERVAL_MS=${c.flushIntervalMs}: ${(c.ratio * 100).toFixed(2)} % (1/${(1 / c.ratio).toFixed(1)})`);

const durationS = quick ? 3 : 10;
const httpRuns = quick ? 1 : 3;
// 50 connections: enough to keep the edge busy through the group-commit wait; with 100,
// a CPU-bound edge on 2 CPUs lets 100 KB requests queue past autocannon's 10 s timeout.
const connections = 50;
const summarize = (r: { runs: HttpRunResult[]; server: ServerReport; requestBytes: number }, perRequest: number) => {
  const handled = r.server.events + Object.values(r.server.dropped).reduce((n, x) => n + x, 0);
  return {
    eventsPerS: median(r.runs.map((x) => x.eventsPerS)),
    requestsPerS: median(r.runs.map((x) => x.requestsPerS)),
    p50: median(r.runs.map((x) => x.latencyP50Ms)),
    p99: median(r.runs.map((x) => x.latencyP99Ms)),
    failures: r.runs.reduce((n, x) => n + x.non2xx + x.errors, 0),
    server: r.server,
    // CPU of the server process per event it handled (aggregated or dropped), over its whole life.
    cpuUsPerEvent: (r.server.cpuMs * 1000) / Math.max(1, handled || r.server.events),
    cpuUsPerRequest: ((r.server.cpuMs * 1000) / Math.max(1, handled || r.server.events)) * perRequest,
    compaction: r.server.envelopeBytes / Math.max(1, r.requestBytes),
  };
};
const perBatch = profile.events / profile.batches.length;
const b = summarize(await benchHttp({ mode: 'batch', profile, durationS, connections, env: HTTP_ENV }, httpRuns), perBatch);
const c = summarize(await benchHttp({ mode: 'beacon', profile, durationS, connections, env: HTTP_ENV }, httpRuns), 1);
const base = summarize(await benchHttp({ mode: 'beacon', profile, durationS, connections, env: HTTP_ENV, server: 'baseline' }, httpRuns), 1);
console.log(`(b) HTTP batches: ${fmt(b.eventsPerS)} events/s (${fmt(b.requestsPerS)} req/s, p50 ${b.p50} ms, p99 ${b.p99} ms, failures ${b.failures}, edge CPU ${b.cpuUsPerEvent.toFixed(0)} µs/event, compaction 1/${(1 / b.compaction).toFixed(1)})`);
console.log(`(b) HTTP beacons: ${fmt(c.requestsPerS)} req/s (p50 ${c.p50} ms, p99 ${c.p99} ms, failures ${c.failures}, edge CPU ${c.cpuUsPerRequest.toFixed(0)} µs/request)`);
console.log(`(b) baseline, trivial Hono app on @hono/node-server: ${fmt(base.requestsPerS)} req/s (CPU ${base.cpuUsPerRequest.toFixed(0)} µs/request)`);

if (quick) process.exit(0);

const flush1s = compaction[0] as (typeof compaction)[number];
const section = `## Edge

Command: \`npm run bench:edge\` (bench/edge/). Measured ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC on ${m.cpus} CPUs
(${m.cpu}), Node ${m.node}; load average at start ${m.load}. The machine is shared and
noisy: figures are medians of several runs, and the in-process throughput is read as a ratio to
JSON.parse measured back to back in the same run.

**Profile** (bench/edge/profile.ts, seeded): ${fmt(profile.events)} events (one minute at about 100k events/min), 5 000 users,
200 paths with Zipf popularity, shaped like analytics.js events (context.page, userAgent, userAgentData,
library, locale, timezone, campaign tags on 15 %; ${(requestBytes / profile.events).toFixed(0)} bytes per event as JSON), 11 browser
user agents and 3 bot user agents (about 2 % of users; dropped under the default \`BOT_POLICY=drop\`), batches of 100 events,
${BENCH_DIMENSIONS.split(',').length} dimensions (\`DIMENSIONS=${BENCH_DIMENSIONS}\`), country from a trusted header.

| measure | result | target | |
|---|---|---|---|
| (a) in process: parse → validate → enrich → pseudonymize → dedup → accumulate | ${fmt(inProcess.pipelineEventsPerS)} events/s | | |
| (a) JSON.parse alone (UTF-8 decode + parse) on the same bytes | ${fmt(inProcess.jsonParseEventsPerS)} events/s | | |
| (a) ratio pipeline / JSON.parse | **${inProcess.ratio.toFixed(2)}** | ≥ ${TARGETS.ratio} | ${mark(inProcess.ratio >= TARGETS.ratio)} |
| (b) HTTP, \`POST /v1/batch\`, 100 events per request | **${fmt(b.eventsPerS)} events/s** (${fmt(b.requestsPerS)} req/s, p50 ${b.p50} ms, p99 ${b.p99} ms) | ≥ ${fmt(TARGETS.batchEventsPerS)} events/s | ${mark(b.eventsPerS >= TARGETS.batchEventsPerS)} |
| (b) HTTP, \`POST /v1/collect\`, one event per request | **${fmt(c.requestsPerS)} req/s** (p50 ${c.p50} ms, p99 ${c.p99} ms) | ≥ ${fmt(TARGETS.beaconRequestsPerS)} req/s | ${mark(c.requestsPerS >= TARGETS.beaconRequestsPerS)} |
| (b) for reference: a trivial Hono app on @hono/node-server (read body, JSON.parse, 202), same beacons | ${fmt(base.requestsPerS)} req/s | | |
| (c) compaction: envelope bytes per raw request byte, \`FLUSH_INTERVAL_MS=1000\` | **1/${(1 / flush1s.ratio).toFixed(1)}** (${(flush1s.ratio * 100).toFixed(2)} %) | ≤ 1/20 | ${mark(flush1s.ratio <= TARGETS.compaction)} |
| (c) the same with \`FLUSH_INTERVAL_MS=10000\` | 1/${(1 / (compaction[1]?.ratio ?? 1)).toFixed(1)} | | |
| (c) observed in the HTTP batch run (flushes every ~20 ms: \`COMMIT_DELAY_MS\` group commit) | 1/${(1 / b.compaction).toFixed(1)} | | |

Details:
- (a) ${inProcess.runs} runs, JSON.parse and pipeline back to back; the ratio is the median of the per-run ratios.
  Pipeline runs (events/s): ${inProcess.pipelineRuns.map(fmt).join(', ')};
  JSON.parse runs: ${inProcess.jsonParseRuns.map(fmt).join(', ')}. Steady state: caches warm (an edge sees the same users and
  user agents all day), a fresh dedup set per run. The first, cold pass (5 000 HMACs, empty caches) ran at ${fmt(inProcess.coldPipelineEventsPerS)} events/s.
  "Parse" is the edge's whole body step: UTF-8 validation, the depth/size scan, JSON.parse and the forbidden-key check.
- (b) The Node edge (\`startNodeEdge\`, @hono/node-server) in a child process with in-memory sinks (no Kafka),
  default flush settings (batch requests are answered after the flush carrying them, which a waiting request triggers
  \`COMMIT_DELAY_MS\` = 20 ms later: group commit), autocannon
  ${connections} connections, ${durationS} s per run, ${httpRuns} runs after a 3 s warm-up, fresh messageIds in every request. The load
  generator and the edge share the ${m.cpus} CPUs. Edge CPU time (all threads, whole life): ${b.cpuUsPerEvent.toFixed(0)} µs per event for batches,
  ${c.cpuUsPerRequest.toFixed(0)} µs per beacon request; the trivial app: ${base.cpuUsPerRequest.toFixed(0)} µs per request. Failures (non-2xx or socket
  errors): ${b.failures} (batches), ${c.failures} (beacons). The edge aggregated ${fmt(b.server.events)} events from batches and dropped
  ${JSON.stringify(b.server.dropped)}.
- (c) ${fmt(flush1s.envelopes)} envelopes, ${fmt(flush1s.rows)} rows, ${fmt(flush1s.envelopeBytes)} bytes for ${fmt(flush1s.requestBytes)} request bytes.
  Rows are per (window, event, dimension values) and flush: with six dimensions most events of a one-second flush
  still differ in some value; a longer flush interval or fewer dimensions compacts more. Synchronous endpoints flush
  \`COMMIT_DELAY_MS\` after a request starts waiting, so under their load envelopes come more often and compact less
  (the HTTP row); \`COMMIT_DELAY_MS=0\` leaves flushing to the \`FLUSH_INTERVAL_MS\` timer at the cost of latency.

**Reading the HTTP results.** They are bounded by CPU on this machine, not by waiting: the edge
spends ${b.cpuUsPerEvent.toFixed(0)} µs of CPU per batched event, i.e. at most ~${fmt(1e6 / b.cpuUsPerEvent)} events/s per core, of which
UTF-8 decoding and JSON.parse alone take ~${(1e6 / inProcess.jsonParseEventsPerS).toFixed(0)} µs (${fmt(inProcess.jsonParseEventsPerS)} events/s in (a)); and a beacon
costs ${c.cpuUsPerRequest.toFixed(0)} µs, against ${base.cpuUsPerRequest.toFixed(0)} µs for a trivial Hono app on the same server stack (at most ~${fmt(1e6 / base.cpuUsPerRequest)} req/s
per core: @hono/node-server builds a WHATWG Request with a body stream per request). With ${m.cpus} CPUs shared with the load
generator and other tenants, 50k events/s and 8k beacons/s are out of reach of one edge process here whatever the edge
does; the edge's own share is what (a) measures. To scale: one edge process per core (dedup is per process already,
docs/EDGE.md), or a leaner Node adapter than @hono/node-server (a hand-rolled \`http\` → \`Request\` adapter served the
trivial app about 1.5× faster in a side test, still below 8k req/s on this machine).

**Hot spots found with \`node --cpu-prof\` and fixed** (bench/edge/http.ts takes \`BENCH_SERVER_NODE_OPTIONS\` to profile the edge):
- dedup and the bounded caches evicted first-in-first-out through \`Set/Map.keys().next()\`: V8 keeps deleted entries
  as holes until it rehashes and the iterator walks them, so once the 100 000-id dedup set was full every event paid
  O(capacity) (about 50 µs per insert at 100 000 entries in a micro-benchmark; in the HTTP batch profile the ingest
  loop's self time fell from 17 % to 2 % of the edge's CPU). Now a ring buffer, O(1);
- \`crypto.subtle.sign\` on Node runs each HMAC as a thread-pool job; the Node entry uses node:crypto's synchronous HMAC
  (pseudonym cache misses: every new user of an epoch);
- the JSON depth/size scan skips string contents in a tight loop; RFC 3339 timestamps are parsed digit by digit instead
  of regex + Date.parse, and a batch's shared \`sentAt\` once; dimension pairs are interned; the cardinality cap looks values
  up in nested maps instead of building composite keys;
- beacon bodies with a Content-Length are read in one \`arrayBuffer()\` call instead of chunk by chunk.
`;

console.log(`written: ${writeBenchmarkSection('Edge', section)}`);
