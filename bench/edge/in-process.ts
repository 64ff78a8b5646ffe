/**
 * Edge benchmark (a) and (c), in process: the edge's own steps on the bytes of the generated
 * profile, with no HTTP and no sink.
 * (a) parse (UTF-8, depth scan, JSON.parse, forbidden keys) -> validate (generated ajv) ->
 *     event time -> enrich (UA, bot, path, referrer, country) -> pseudonymize -> dedup ->
 *     accumulate, in events/s, against JSON.parse alone on the same bytes;
 * (c) compaction: bytes of the encoded envelopes the flusher would send per raw request byte.
 */
import { encodeEnvelope } from '../../shared/algebra/index.ts';
import { createAccumulator } from '../../edge/accumulator.ts';
import { parseJsonBody } from '../../edge/body/parse-json.ts';
import type { EdgeConfig } from '../../edge/config.ts';
import { fakeFlusher } from '../../test/support/fake-flusher.ts';
import { createIngest, createIngestState, type IngestState } from '../../edge/ingest.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDedupStore } from '../../edge/node/dedup-store.ts';
import { createMemoryDeduplicator, type Deduplicator } from '../../edge/pipeline/dedup.ts';
import { extractEvents } from '../../edge/request-events.ts';
import { nodeHmac } from '../../edge/node/hmac.ts';
import { createStaticSaltProvider } from '../../shared/salts.ts';
import type { Profile } from './profile.ts';

export interface InProcessResult {
  /** Medians over the runs, events per second. */
  pipelineEventsPerS: number;
  jsonParseEventsPerS: number;
  /** Median over the runs of (pipeline / JSON.parse) measured back to back: robust to load drifting between runs. */
  ratio: number;
  runs: number;
  /** Per-run values, for the record. */
  pipelineRuns: number[];
  jsonParseRuns: number[];
  coldPipelineEventsPerS: number;
}

export interface CompactionResult {
  flushIntervalMs: number;
  requestBytes: number;
  envelopeBytes: number;
  envelopes: number;
  rows: number;
  /** envelope bytes per request byte */
  ratio: number;
}

const noopFlusher = fakeFlusher();

function newState(config: EdgeConfig, profile: Profile): IngestState {
  const receivedAt = profile.startMs + profile.spanMs;
  // The Node entry's HMAC (startNodeEdge passes the same).
  const salts = createStaticSaltProvider({ secret: config.pseudonymSalt, epochMs: config.saltEpochMs, retentionEpochs: config.saltRetentionEpochs, now: () => receivedAt });
  return createIngestState(config, salts, { mac: nodeHmac });
}

/**
 * One pass over the profile. `onFlush` is called with the drained rows every `flushIntervalMs`
 * of simulated time (the profile's events are spread over its span), as the flusher would.
 */
async function pass(config: EdgeConfig, profile: Profile, state: IngestState, flushIntervalMs: number, onFlush: (rows: ReturnType<ReturnType<typeof createAccumulator>['drain']>, nowMs: number) => void): Promise<void> {
  const accumulator = createAccumulator({ windowSizeMs: config.windowSizeMs, cardinalityCap: config.cardinalityCap });
  const ingest = createIngest({ config, accumulator, flusher: noopFlusher, state });
  const perBatchMs = profile.spanMs / profile.batches.length;
  let nextFlush = profile.startMs + flushIntervalMs;
  for (let i = 0; i < profile.batches.length; i++) {
    const bytes = profile.batches[i] as Uint8Array;
    const receivedAtMs = profile.startMs + Math.floor(i * perBatchMs);
    const parsed = parseJsonBody(bytes);
    if (parsed.kind !== 'ok') throw new Error(`profile batch ${i} refused: ${parsed.message}`);
    const events = extractEvents(parsed.value, { kind: 'batch' }, {
      maxEventsPerBatch: config.maxEventsPerBatch,
      maxEventBytes: config.maxEventBytes,
      bodyBytes: bytes.byteLength,
      batchElementBytes: parsed.arrayElementBytes.get('batch'),
    });
    if (events.kind !== 'ok') throw new Error(`profile batch ${i} refused: ${events.message}`);
    const summary = await ingest(events, { site: 'bench', receivedAtMs, country: profile.batchCountries[i] });
    if ('kind' in summary || summary.rejected.length > 0) throw new Error(`profile batch ${i}: events rejected`);
    if (receivedAtMs >= nextFlush) {
      onFlush(accumulator.drain(), receivedAtMs);
      // As the flusher does once the envelopes are acknowledged: the dedup marks become committed.
      state.dedup.drained();
      state.dedup.acknowledged();
      nextFlush += flushIntervalMs;
    }
  }
  onFlush(accumulator.drain(), profile.startMs + profile.spanMs);
  state.dedup.drained();
  state.dedup.acknowledged();
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

export async function benchInProcess(config: EdgeConfig, profile: Profile, runs: number): Promise<InProcessResult> {
  const decoder = new TextDecoder();
  const jsonParse = (): number => {
    const t0 = performance.now();
    let n = 0;
    for (const bytes of profile.batches) n += (JSON.parse(decoder.decode(bytes)) as { batch: unknown[] }).batch.length;
    if (n !== profile.events) throw new Error('profile size mismatch');
    return profile.events / ((performance.now() - t0) / 1000);
  };
  const pipeline = async (state: IngestState): Promise<number> => {
    const t0 = performance.now();
    await pass(config, profile, state, config.flushIntervalMs, () => undefined);
    return profile.events / ((performance.now() - t0) / 1000);
  };
  // The Node edge's dedup: the shared on-disk store (ADR 0010), fresh per run or the repeated
  // messageIds would all be dropped as retries.
  const withFreshDedup = async (state: IngestState): Promise<number> => {
    const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-dedup-'));
    const dedup: Deduplicator & { close(): void } = openDedupStore({ dir, windowMs: config.dedupWindowMs });
    try {
      return await pipeline({ ...state, dedup });
    } finally {
      dedup.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };

  // Cold: fresh caches (user agents, paths, referrers, 5k pseudonyms computed by HMAC).
  const warm = newState(config, profile);
  const coldPipelineEventsPerS = await withFreshDedup(warm);
  // One more unmeasured pass each, so the JIT has settled before the measured runs.
  await withFreshDedup(warm);
  jsonParse();
  // Warm (steady state: an edge sees the same users and user agents all day). A fresh dedup
  // set per run, or the repeated messageIds would all be dropped as retries.
  const pipelineRuns: number[] = [];
  const jsonParseRuns: number[] = [];
  for (let r = 0; r < runs; r++) {
    jsonParseRuns.push(jsonParse());
    pipelineRuns.push(await withFreshDedup(warm));
  }
  return {
    pipelineEventsPerS: median(pipelineRuns),
    jsonParseEventsPerS: median(jsonParseRuns),
    ratio: median(pipelineRuns.map((p, i) => p / (jsonParseRuns[i] as number))),
    runs,
    pipelineRuns,
    jsonParseRuns,
    coldPipelineEventsPerS,
  };
}

/**
 * The pipeline's CPU per event with the in-memory dedup set (what the Node edge had) and with the
 * shared on-disk store (ADR 0010), alternating runs so that load drifting on a shared machine
 * hits both alike. CPU time of this process (`process.cpuUsage`), not wall time.
 */
export async function benchDedupCost(config: EdgeConfig, profile: Profile, rounds: number): Promise<{ memoryUsPerEvent: number; storeUsPerEvent: number; memoryRuns: number[]; storeRuns: number[] }> {
  const warm = newState(config, profile);
  const cpuPass = async (dedup: Deduplicator): Promise<number> => {
    const c0 = process.cpuUsage();
    await pass(config, profile, { ...warm, dedup }, config.flushIntervalMs, () => undefined);
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / profile.events;
  };
  const withStore = async (): Promise<number> => {
    const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-dedup-'));
    const store = openDedupStore({ dir, windowMs: config.dedupWindowMs });
    try {
      return await cpuPass(store);
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };
  await cpuPass(createMemoryDeduplicator({ capacity: config.dedupCapacity }));
  await withStore();
  const memoryRuns: number[] = [];
  const storeRuns: number[] = [];
  for (let r = 0; r < rounds; r++) {
    memoryRuns.push(await cpuPass(createMemoryDeduplicator({ capacity: config.dedupCapacity })));
    storeRuns.push(await withStore());
  }
  return { memoryUsPerEvent: median(memoryRuns), storeUsPerEvent: median(storeRuns), memoryRuns, storeRuns };
}

export async function benchCompaction(config: EdgeConfig, profile: Profile, flushIntervalMs: number): Promise<CompactionResult> {
  let envelopeBytes = 0;
  let envelopes = 0;
  let rows = 0;
  let sequence = 1;
  await pass(config, profile, newState(config, profile), flushIntervalMs, (drained, nowMs) => {
    // One envelope per flush, as the flusher sends it (split only past FLUSH_MAX_ROWS rows).
    for (let i = 0; i < drained.length || i === 0; i += config.flushMaxRows) {
      const chunk = drained.slice(i, i + config.flushMaxRows);
      envelopeBytes += encodeEnvelope({ version: 1, sourceId: 'edge-bench-0001', sequence: sequence++, watermarkMs: nowMs - 1000, createdAtMs: nowMs, rows: chunk }).byteLength;
      envelopes++;
      rows += chunk.length;
    }
  });
  const requestBytes = profile.batches.reduce((n, b) => n + b.byteLength, 0);
  return { flushIntervalMs, requestBytes, envelopeBytes, envelopes, rows, ratio: envelopeBytes / requestBytes };
}
