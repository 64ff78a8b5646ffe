import type { EdgeConfig } from './config.ts';
import type { Accumulator } from './accumulator.ts';
import type { Flusher } from './flusher.ts';
import type { RejectedRecord } from './ports.ts';
import type { RequestEvents } from './request-events.ts';
import { saltEpoch, type MacFactory, type SaltProvider } from './salt-provider.ts';
import type { FieldError, SegmentEvent } from '../schemas/validators.ts';
import { createMemoryDeduplicator, type Deduplicator } from './pipeline/dedup.ts';
import { createEnrichStep, eventName, numericValue, type Dimensions, type EnrichStep } from './pipeline/dimensions.ts';
import { createEventTimeStep } from './pipeline/event-time.ts';
import { createPseudonymizer, rawUserId, type Pseudonym, type PseudonymResult, type Pseudonymizer } from './pipeline/pseudonymize.ts';
import { redactRejectedRecord } from './pipeline/redact.ts';
import { createScrubber, type Scrub } from './pipeline/scrub.ts';
import { DROP_REASONS, type DropReason } from './pipeline/step-result.ts';

/** What happened to a request's events, as reported to the client. */
export interface IngestSummary {
  accepted: number;
  /** Accepted events whose messageId was already counted (client retries). */
  duplicates: number;
  rejected: Array<{ index: number; messageId: string | null; errors: FieldError[] }>;
}

/** The request could not be taken now (nothing of it was counted): answer 503 and let the client retry. */
export interface IngestRetry {
  kind: 'retry';
  /**
   * `salt_unavailable`: a pseudonym salt cannot be had now; `in_flight`: another edge process
   * holds one of the request's messageIds in an envelope not yet acknowledged by Kafka;
   * `dedup_unavailable`: the retry dedup store failed (logged `dedup_store_failed`).
   */
  reason: 'salt_unavailable' | 'in_flight' | 'dedup_unavailable';
  message: string;
}

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
  (req: RequestEvents, ctx: IngestContext): Promise<IngestSummary | IngestRetry>;
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

interface ValidEvent {
  event: SegmentEvent;
  eventTimeMs: number;
  /** `undefined` for a dropped event (bot). */
  dimensions: Dimensions | undefined;
  dropReason: DropReason | undefined;
  pseudonym: PseudonymResult | Promise<PseudonymResult> | undefined;
}

/**
 * The per-event pipeline after validation: event time -> enrich (UA, bot policy, path,
 * referrer, country) -> pseudonymize (epoch salt) -> dedup -> accumulate, plus redaction of
 * rejected events for the rejected sink. State (caches, dedup set, counters) lives as long as
 * the edge instance.
 */
export function createIngest(o: { config: EdgeConfig; accumulator: Accumulator; flusher: Flusher; state: IngestState }): Ingest {
  const eventTime = createEventTimeStep({ maxFutureSkewMs: o.config.maxFutureSkewMs });
  const { enrich, pseudonymizer, dedup, scrub, dropped, usersNotCounted } = o.state;
  const epochMs = o.state.salts.epochMs;

  async function rejectedPseudonym(site: string, raw: unknown, receivedAtMs: number): Promise<string | undefined> {
    if (raw === null || typeof raw !== 'object') return undefined;
    const { userId, anonymousId } = raw as { userId?: unknown; anonymousId?: unknown };
    const id = [userId, anonymousId].find((v) => (typeof v === 'string' && v !== '') || (typeof v === 'number' && Number.isFinite(v)));
    if (id === undefined) return undefined;
    const r = await pseudonymizer.pseudonym(saltEpoch(receivedAtMs, epochMs), site, String(id), receivedAtMs);
    return r.kind === 'ok' ? r.pseudonym.hex : undefined;
  }

  const ingest = (async (req, ctx) => {
    const summary: IngestSummary = { accepted: 0, duplicates: 0, rejected: [] };
    const rejectedItems: Array<{ index: number; raw: unknown; messageId: string | null; errors: FieldError[] }> = [];
    const valid: ValidEvent[] = [];
    let misses = 0;
    const enrichContext = { batchContext: req.batchContext, country: ctx.country, headerUserAgent: ctx.headerUserAgent };
    const timeContext = { receivedAtMs: ctx.receivedAtMs, batchSentAt: req.batchSentAt };
    const rejectItem = (item: { index: number; raw: unknown }, errors: FieldError[]): void => {
      const messageId = messageIdOf(item.raw);
      summary.rejected.push({ index: item.index, messageId, errors });
      rejectedItems.push({ index: item.index, raw: item.raw, messageId, errors });
    };

    for (const item of req.events) {
      const r = item.result;
      if (r.kind === 'ok') {
        const event = r.value;
        const time = eventTime(event, timeContext);
        if (time.kind !== 'ok') {
          if (time.kind === 'reject') rejectItem(item, time.errors);
          continue;
        }
        const { eventTimeMs } = time.value;
        const enriched = enrich(event, enrichContext);
        if (enriched.kind !== 'ok') {
          valid.push({ event, eventTimeMs, dimensions: undefined, dropReason: enriched.kind === 'drop' ? enriched.reason : undefined, pseudonym: undefined });
          continue;
        }
        // Schema guarantees userId or anonymousId.
        const epoch = saltEpoch(eventTimeMs, epochMs);
        const id = rawUserId(event) ?? '';
        let pseudonym: ValidEvent['pseudonym'] = pseudonymizer.now(epoch, ctx.site, id, ctx.receivedAtMs);
        if (pseudonym === undefined) {
          pseudonym = pseudonymizer.pseudonym(epoch, ctx.site, id, ctx.receivedAtMs);
          misses++;
        }
        valid.push({ event, eventTimeMs, dimensions: enriched.value, dropReason: undefined, pseudonym });
      } else if (r.kind === 'reject') {
        rejectItem(item, r.errors);
      }
    }

    // Only cache misses wait (HMAC, or the salt provider). If a salt cannot be had, nothing of
    // this request has been counted or marked as seen yet, so the client can simply retry.
    const settled = misses > 0 ? await Promise.all(valid.map((v) => v.pseudonym)) : (valid.map((v) => v.pseudonym) as Array<PseudonymResult | undefined>);
    const users = new Array<Pseudonym | undefined>(valid.length);
    for (let i = 0; i < settled.length; i++) {
      const s = settled[i];
      if (s?.kind === 'ok') users[i] = s.pseudonym;
      else if (s?.kind === 'unavailable') {
        return { kind: 'retry', reason: 'salt_unavailable', message: `the pseudonym salt is unavailable (${s.reason}): retry after the Retry-After delay` };
      }
    }

    const receivedAt = rejectedItems.length > 0 ? new Date(ctx.receivedAtMs).toISOString() : '';
    const records: RejectedRecord[] = [];
    for (const item of rejectedItems) {
      const record = { site: ctx.site, received_at: receivedAt, index: item.index, message_id: item.messageId, errors: item.errors, event: item.raw };
      records.push(redactRejectedRecord(record, { scrub, userPseudonym: await rejectedPseudonym(ctx.site, item.raw, ctx.receivedAtMs) }));
    }

    // From here to the end nothing awaits: dedup marks and accumulator adds happen together,
    // so a concurrent retry of the same messageId and a concurrent flush see both or neither.
    const ids = new Array<string | undefined>(valid.length);
    for (let i = 0; i < valid.length; i++) ids[i] = (valid[i] as ValidEvent).event.messageId;
    const claim = dedup.claim(ctx.site, ids);
    if (claim.kind === 'busy') {
      return { kind: 'retry', reason: 'in_flight', message: 'an event of this request is still being stored by another edge process: retry the same request after the Retry-After delay; it will not be counted twice' };
    }
    if (claim.kind === 'unavailable') {
      return { kind: 'retry', reason: 'dedup_unavailable', message: 'the retry deduplication store failed; nothing of this request was counted: retry it after the Retry-After delay' };
    }
    for (let i = 0; i < valid.length; i++) {
      const v = valid[i] as ValidEvent;
      summary.accepted++;
      if (claim.duplicate[i] === true) {
        summary.duplicates++;
        dropped.duplicate_message_id++;
        continue;
      }
      if (v.dimensions === undefined) {
        if (v.dropReason !== undefined) dropped[v.dropReason]++;
        continue;
      }
      const user = users[i];
      if (user === undefined) usersNotCounted.salt_expired++;
      o.accumulator.add({
        eventTimeMs: v.eventTimeMs,
        site: ctx.site,
        event: eventName(v.event, scrub),
        dimensions: v.dimensions,
        user: user?.hash,
        value: numericValue(v.event),
        // The Workers shards deduplicate durably by messageId (edge/worker, ADR 0004).
        ...(v.event.messageId !== undefined ? { messageId: v.event.messageId } : {}),
      });
    }
    if (records.length > 0) o.flusher.addRejected(records);
    o.flusher.rowsAdded();
    return summary;
  }) as Ingest;
  ingest.counters = () => ({ dropped: { ...dropped }, usersNotCounted: { ...usersNotCounted } });
  return ingest;
}

function messageIdOf(raw: unknown): string | null {
  if (raw === null || typeof raw !== 'object') return null;
  const id = (raw as { messageId?: unknown }).messageId;
  return typeof id === 'string' ? id.slice(0, 100) : null;
}
