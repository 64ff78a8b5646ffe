import type { EdgeConfig } from './config.ts';
import type { Accumulator } from './accumulator.ts';
import type { Flusher } from './flusher.ts';
import type { RequestEvents } from './request-events.ts';
import type { MacFactory, SaltProvider } from '../shared/salts.ts';
import { createMemoryDeduplicator, type Deduplicator } from './pipeline/dedup.ts';
import { createEnrichStep, type EnrichStep } from './pipeline/dimensions.ts';
import { createEventTimeStep } from './pipeline/event-time.ts';
import { createPipelinePhases, rejectedEvent, type IngestSummary, type PrepareContext, type PreparedRequest } from './pipeline/index.ts';
import { createPseudonymizer, type Pseudonymizer } from './pipeline/pseudonymize.ts';
import { createScrubber, type Scrub } from '../shared/privacy/scrub.ts';
import { DROP_REASONS, type DropReason, type Retry } from './pipeline/step-result.ts';

export type { IngestSummary } from './pipeline/index.ts';

export interface IngestContext {
  site: string;
  receivedAtMs: number;
  /** From a trusted source (proxy header, platform), never from the body. */
  country: string | undefined;
  /** The `User-Agent` header, for browser beacons only (see `EnrichContext.headerUserAgent`). */
  headerUserAgent?: string | undefined;
}

/** Counters since start-up, reported by `/health`. */
export interface IngestCounters {
  /** Valid, acknowledged events that were not aggregated, per reason. */
  dropped: Record<DropReason, number>;
  /** Events counted without their user because the salt of their epoch is no longer retained. */
  usersNotCounted: { salt_expired: number };
}

export interface Ingest {
  /** The summary, or `retry`: the request could not be taken now (nothing of it was counted), answer 503. */
  (req: RequestEvents, ctx: IngestContext): Promise<IngestSummary | Retry>;
  counters(): IngestCounters;
}

/**
 * The long-lived part of the pipeline: caches (user agents, paths, referrers, pseudonyms), the
 * dedup set and the counters. An entry that builds its app per request (Workers) keeps one
 * state per isolate and passes it in, so the caches survive between requests.
 */
export interface IngestState {
  salts: SaltProvider;
  enrich: EnrichStep;
  pseudonymizer: Pseudonymizer;
  dedup: Deduplicator;
  /** Scrubs everything that leaves the edge (event names, paths, rejected records). */
  scrub: Scrub;
  dropped: Record<DropReason, number>;
  usersNotCounted: { salt_expired: number };
}

/**
 * @example
 * ```ts
 * const state = createIngestState(config, createStaticSaltProvider({ secret: config.pseudonymSalt, epochMs: config.saltEpochMs, retentionEpochs: config.saltRetentionEpochs, now: Date.now }));
 * ```
 */
export function createIngestState(config: EdgeConfig, salts: SaltProvider, o: { mac?: MacFactory; dedup?: Deduplicator } = {}): IngestState {
  const scrub = createScrubber({ pathSecretPatterns: config.pathSecretPatterns });
  return {
    salts,
    scrub,
    enrich: createEnrichStep({ dimensions: config.dimensions, botPolicy: config.botPolicy, pathQueryAllowlist: config.pathQueryAllowlist, scrub }),
    pseudonymizer: createPseudonymizer({ salts, ...(o.mac ? { mac: o.mac } : {}) }),
    // Default: in memory, per process (the Node entry passes the shared on-disk store, ADR 0010).
    dedup: o.dedup ?? createMemoryDeduplicator({ capacity: config.dedupWindowMs > 0 ? config.dedupCapacity : 0 }),
    dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>,
    usersNotCounted: { salt_expired: 0 },
  };
}

/**
 * The per-request pipeline: the phases of edge/pipeline/index.ts run in order, `prepare` per
 * event, `resolve` (the only await), `commit`. State (caches, dedup set, counters) lives as long
 * as the edge instance.
 */
export function createIngest(o: { config: EdgeConfig; accumulator: Accumulator; flusher: Flusher; state: IngestState }): Ingest {
  const { enrich, pseudonymizer, dedup, scrub, salts, dropped, usersNotCounted } = o.state;
  const { prepare, resolve, commit } = createPipelinePhases({
    eventTime: createEventTimeStep({ maxFutureSkewMs: o.config.maxFutureSkewMs }),
    enrich,
    scrub,
    salts,
    pseudonymizer,
    dedup,
    accumulator: o.accumulator,
    flusher: o.flusher,
    dropped,
    usersNotCounted,
  });

  const ingest = (async (req, ctx) => {
    const prepareContext: PrepareContext = {
      site: ctx.site,
      receivedAtMs: ctx.receivedAtMs,
      batchSentAt: req.batchSentAt,
      batchContext: req.batchContext,
      country: ctx.country,
      headerUserAgent: ctx.headerUserAgent,
    };
    const request: PreparedRequest = { site: ctx.site, receivedAtMs: ctx.receivedAtMs, events: [], rejected: [] };
    for (const item of req.events) {
      const p = prepare(item, prepareContext);
      if (p.kind === 'ok') request.events.push(p.value);
      else if (p.kind === 'reject') request.rejected.push(rejectedEvent(item, p.errors));
      else return p; // retry: the request is refused as a whole, nothing counted
    }
    const resolution = resolve(request);
    const resolved = resolution instanceof Promise ? await resolution : resolution;
    if (resolved.kind !== 'ok') return resolved;
    const committed = commit(request, resolved.value);
    return committed.kind === 'ok' ? committed.value : committed;
  }) as Ingest;
  ingest.counters = () => ({ dropped: { ...dropped }, usersNotCounted: { ...usersNotCounted } });
  return ingest;
}
