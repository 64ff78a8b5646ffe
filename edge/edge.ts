import { createAccumulator, type Accumulator } from './accumulator.ts';
import { createEdgeApp } from './app.ts';
import type { EdgeConfig } from './config.ts';
import type { BodyLimiter } from './body/body-limits.ts';
import type { CountryLookup } from './country.ts';
import { createFlusher, type Flusher, type FlusherOptions } from './flusher.ts';
import { createIngestHttp, type IngestHttp } from './http-ingest.ts';
import type { EdgeLog } from './ports.ts';
import type { PipelineSink } from '../shared/ports/pipeline-sink.ts';
import type { Deduplicator } from './pipeline/dedup.ts';
import type { MacFactory, SaltProvider } from '../shared/salts.ts';
import type { Hono } from 'hono';

export interface EdgeOptions {
  config: EdgeConfig;
  sourceId: string;
  /** Where flushed envelopes and rejected records go (Kafka on Node, the gateway on Deno). */
  sink: PipelineSink;
  now?: () => number;
  /** Trusted client country (edge/country.ts); default the `COUNTRY_HEADER` header, else none. */
  country?: CountryLookup;
  /** Epoch salts; default derived from `PSEUDONYM_SALT` (see `createStaticSaltProvider`). */
  saltProvider?: SaltProvider;
  /** HMAC-SHA-256 for pseudonyms; default `crypto.subtle` (see `webCryptoHmac`). */
  pseudonymMac?: MacFactory;
  log?: EdgeLog;
  /** Retry deduplication; default in memory, per process (`createMemoryDeduplicator`). */
  dedup?: Deduplicator;
  /** Body timeout and in-flight caps for the app's requests (`createBodyLimiter`); the Deno entry's. Default none. */
  bodyLimiter?: BodyLimiter;
  /** Retry tuning and test hooks passed to the flusher. */
  flusher?: Pick<FlusherOptions, 'retries' | 'backoffBaseMs' | 'sleep' | 'random' | 'maxEnvelopeBytes' | 'initialSequence' | 'journal'>;
}

/** An assembled edge: the Hono app plus the flusher the entry drives with a timer. */
export interface Edge {
  app: Hono;
  /** The HTTP semantics `app` serves, for adapters that skip Hono on hot paths (edge/node/http-listener.ts); same state. */
  http: IngestHttp;
  flusher: Flusher;
  accumulator: Accumulator;
}

/**
 * Wires accumulator, flusher and app from one config: what every runtime entry does.
 *
 * @example
 * ```ts
 * const edge = createEdge({ config, sourceId: 'edge-a', sink });
 * const timer = setInterval(() => void edge.flusher.tick(), config.flushIntervalMs);
 * ```
 */
export function createEdge(o: EdgeOptions): Edge {
  const now = o.now ?? Date.now;
  const accumulator = createAccumulator({ windowSizeMs: o.config.windowSizeMs, cardinalityCap: o.config.cardinalityCap });
  const flusher = createFlusher({
    ...o.flusher,
    sourceId: o.sourceId,
    accumulator,
    sink: o.sink,
    now,
    flushIntervalMs: o.config.flushIntervalMs,
    commitDelayMs: o.config.commitDelayMs,
    heartbeatMs: o.config.heartbeatMs,
    watermarkDelayMs: o.config.watermarkDelayMs,
    flushMaxRows: o.config.flushMaxRows,
    maxPendingRows: o.config.maxPendingRows,
    ...(o.log ? { log: o.log } : {}),
    ...(o.dedup ? { marks: o.dedup } : {}),
  });
  const http = createIngestHttp({
    config: o.config,
    accumulator,
    flusher,
    now,
    ...(o.saltProvider ? { saltProvider: o.saltProvider } : {}),
    ...(o.pseudonymMac ? { pseudonymMac: o.pseudonymMac } : {}),
    ...(o.log ? { log: o.log } : {}),
    ...(o.dedup ? { dedup: o.dedup } : {}),
  });
  const app = createEdgeApp({ config: o.config, accumulator, flusher, http, ...(o.country ? { country: o.country } : {}), ...(o.bodyLimiter ? { bodyLimiter: o.bodyLimiter } : {}) });
  return { app, http, flusher, accumulator };
}
