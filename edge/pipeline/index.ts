/**
 * The edge pipeline, in the order it runs (docs/EDGE.md "Pipeline"). Three phases per request:
 *
 * 1. `prepare`, synchronous, once per event:
 *    validate (absent nulls, size, schema: done while the request's events are extracted,
 *    edge/request-events.ts) → event time (event-time.ts) → enrich: user agent and bot policy,
 *    path, referrer, country (dimensions.ts, which scrubs paths, kept query values and referrer
 *    domains) → name: the event name scrubbed (scrub.ts), the numeric value.
 * 2. `resolve`, the one asynchronous step, once per request: pseudonymize (pseudonymize.ts; only
 *    cache misses await, all of a request's together) and redact the rejected events for the
 *    rejected sink (redact.ts).
 * 3. `commit`, synchronous, once per request: dedup (dedup.ts) → accumulate. Nothing can await
 *    between the two (`commit` returns no Promise), so a concurrent retry of the same messageId
 *    and a concurrent flush see both the dedup marks and the accumulator rows, or neither.
 *
 * Every step returns a {@link StepResult}: `ok`, `reject` (invalid event), `drop` (valid, not
 * aggregated) or `retry` (nothing of the request was counted: 503). The other files here are
 * helpers of these steps (referrer.ts, user-agent.ts, country.ts); the scrubber, the path
 * normalizer and the rejected-record redaction are in shared/privacy/, because the gateway
 * applies them too. Runtime hooks (the client's country) are ports: edge/country.ts.
 */
import type { Accumulator } from '../accumulator.ts';
import type { Flusher } from '../flusher.ts';
import type { RejectedRecord } from '../ports.ts';
import type { CheckedEvent } from '../request-events.ts';
import { saltEpoch, type SaltProvider } from '../../shared/salts.ts';
import type { EventContext, FieldError } from '../../schemas/validators.ts';
import type { Deduplicator } from './dedup.ts';
import { eventName, numericValue, type Dimensions, type EnrichStep } from './dimensions.ts';
import type { createEventTimeStep, EventTime } from './event-time.ts';
import { rawUserId, type Pseudonym, type PseudonymResult, type Pseudonymizer } from './pseudonymize.ts';
import { redactRejectedRecord } from '../../shared/privacy/redact.ts';
import type { Scrub } from '../../shared/privacy/scrub.ts';
import { ok, retry, type Drop, type DropReason, type Ok, type Reject, type Retry, type StepResult } from './step-result.ts';

export { DROP_REASONS, type DropReason, type Retry, type RetryReason, type StepResult } from './step-result.ts';

/** The steps of each phase, in order (names as in docs/EDGE.md "Pipeline"). */
export const PIPELINE = {
  prepare: ['validate', 'event-time', 'enrich', 'name'],
  resolve: ['pseudonymize', 'redact-rejected'],
  commit: ['dedup', 'accumulate'],
} as const;

/** What happened to a request's events, as reported to the client. */
export interface IngestSummary {
  accepted: number;
  /** Accepted events whose messageId was already counted (client retries). */
  duplicates: number;
  rejected: Array<{ index: number; messageId: string | null; errors: FieldError[] }>;
}

/** What `prepare` reads of the request: trusted values from the platform, never from the body. */
export interface PrepareContext {
  site: string;
  receivedAtMs: number;
  batchSentAt: string | undefined;
  batchContext: EventContext | undefined;
  /** From a trusted source (proxy header, platform): see edge/country.ts. */
  country: string | undefined;
  /** The `User-Agent` header, for browser beacons only (see `EnrichContext.headerUserAgent`). */
  headerUserAgent: string | undefined;
}

/** A valid event after `prepare`: everything `commit` needs except its pseudonym. */
export interface PreparedEvent {
  messageId: string | undefined;
  /** Why the event is not aggregated (it is valid and acknowledged all the same); undefined: counted. */
  dropReason: DropReason | undefined;
  eventTimeMs: number;
  /** The event name rows are counted under, scrubbed ('' when dropped). */
  name: string;
  /** Undefined when dropped. */
  dimensions: Dimensions | undefined;
  value: number | undefined;
  /** Salt epoch of the event time, and the raw id `resolve` turns into a pseudonym (memory only). */
  epoch: number;
  userId: string;
}

/** An invalid event: reported to the client and, redacted, to the rejected sink. */
export interface RejectedEvent {
  index: number;
  raw: unknown;
  messageId: string | null;
  errors: FieldError[];
}

/** A request after `prepare`, in the order of its events. */
export interface PreparedRequest {
  site: string;
  receivedAtMs: number;
  events: PreparedEvent[];
  rejected: RejectedEvent[];
}

/** What `resolve` adds to a prepared request. */
export interface Resolved {
  /** Per prepared event: its pseudonym; undefined when dropped or the salt of its epoch has expired. */
  users: Array<Pseudonym | undefined>;
  /** The rejected events, redacted for the rejected sink. */
  rejected: RejectedRecord[];
}

/** A phase's result when it works on the whole request: carry on, or refuse it (nothing counted). */
export type RequestResult<T> = Ok<T> | Retry;

export interface PipelinePhases {
  /** Phase 1, synchronous, per event: its validation outcome → event time → enrich → name. */
  prepare(item: CheckedEvent, ctx: PrepareContext): Exclude<StepResult<PreparedEvent>, Drop>;
  /** Phase 2, the one asynchronous step (a Promise only when a pseudonym or a rejected event needs one). */
  resolve(request: PreparedRequest): RequestResult<Resolved> | Promise<RequestResult<Resolved>>;
  /** Phase 3, synchronous: dedup → accumulate, and the rejected records to the flusher. */
  commit(request: PreparedRequest, resolved: Resolved): RequestResult<IngestSummary>;
}

export interface PipelineDeps {
  eventTime: ReturnType<typeof createEventTimeStep>;
  enrich: EnrichStep;
  scrub: Scrub;
  salts: Pick<SaltProvider, 'epochMs'>;
  pseudonymizer: Pseudonymizer;
  dedup: Deduplicator;
  accumulator: Pick<Accumulator, 'add'>;
  flusher: Pick<Flusher, 'addRejected' | 'rowsAdded'>;
  /** Counters since start-up (`/health`), updated by `commit`. */
  dropped: Record<DropReason, number>;
  usersNotCounted: { salt_expired: number };
}

/**
 * The three phases over long-lived steps and state (caches, dedup set, counters); see the top
 * of this file. edge/ingest.ts runs them for each request.
 *
 * @example
 * ```ts
 * const { prepare, resolve, commit } = createPipelinePhases(deps);
 * const request: PreparedRequest = { site, receivedAtMs, events: [], rejected: [] };
 * for (const item of events.events) { const p = prepare(item, ctx); if (p.kind === 'ok') request.events.push(p.value); }
 * const resolved = await resolve(request);
 * if (resolved.kind === 'ok') commit(request, resolved.value);
 * ```
 */
export function createPipelinePhases(d: PipelineDeps): PipelinePhases {
  const epochMs = d.salts.epochMs;
  const { pseudonymizer } = d;

  function prepare(item: CheckedEvent, ctx: PrepareContext): Exclude<StepResult<PreparedEvent>, Drop> {
    // validate: the outcome extractEvents decided for this event.
    const valid = item.result;
    if (valid.kind !== 'ok') return valid;
    const event = valid.value;
    const time: StepResult<EventTime> = d.eventTime(event, ctx);
    if (time.kind !== 'ok') return stopped(time, event.messageId, ctx.receivedAtMs);
    const eventTimeMs = time.value.eventTimeMs;
    const enriched = d.enrich(event, ctx);
    if (enriched.kind !== 'ok') return stopped(enriched, event.messageId, eventTimeMs);
    return ok({
      messageId: event.messageId,
      dropReason: undefined,
      eventTimeMs,
      name: eventName(event, d.scrub),
      dimensions: enriched.value,
      value: numericValue(event),
      epoch: saltEpoch(eventTimeMs, epochMs),
      // Schema guarantees userId or anonymousId.
      userId: rawUserId(event) ?? '',
    });
  }

  async function rejectedPseudonym(site: string, raw: unknown, receivedAtMs: number): Promise<string | undefined> {
    if (raw === null || typeof raw !== 'object') return undefined;
    const { userId, anonymousId } = raw as { userId?: unknown; anonymousId?: unknown };
    const id = [userId, anonymousId].find((v) => (typeof v === 'string' && v !== '') || (typeof v === 'number' && Number.isFinite(v)));
    if (id === undefined) return undefined;
    const r = await pseudonymizer.pseudonym(saltEpoch(receivedAtMs, epochMs), site, String(id), receivedAtMs);
    return r.kind === 'ok' ? r.pseudonym.hex : undefined;
  }

  async function redactRejected(request: PreparedRequest): Promise<RejectedRecord[]> {
    const receivedAt = new Date(request.receivedAtMs).toISOString();
    const records: RejectedRecord[] = [];
    for (const item of request.rejected) {
      const record = { site: request.site, received_at: receivedAt, index: item.index, message_id: item.messageId, errors: item.errors, event: item.raw };
      records.push(redactRejectedRecord(record, { scrub: d.scrub, userPseudonym: await rejectedPseudonym(request.site, item.raw, request.receivedAtMs) }));
    }
    return records;
  }

  /** The pseudonyms, or `retry` when a salt cannot be had (nothing of the request is counted or marked yet). */
  function users(settled: ReadonlyArray<PseudonymResult | undefined>): RequestResult<Array<Pseudonym | undefined>> {
    const out = new Array<Pseudonym | undefined>(settled.length);
    for (let i = 0; i < settled.length; i++) {
      const s = settled[i];
      if (s?.kind === 'ok') out[i] = s.pseudonym;
      else if (s?.kind === 'unavailable') return retry('salt_unavailable', `the pseudonym salt is unavailable (${s.reason}): retry after the Retry-After delay`);
    }
    return ok(out);
  }

  function resolve(request: PreparedRequest): RequestResult<Resolved> | Promise<RequestResult<Resolved>> {
    const { events, site, receivedAtMs } = request;
    const pending = new Array<PseudonymResult | Promise<PseudonymResult> | undefined>(events.length);
    let misses = 0;
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as PreparedEvent;
      if (e.dimensions === undefined) continue;
      let p: PseudonymResult | Promise<PseudonymResult> | undefined = pseudonymizer.now(e.epoch, site, e.userId, receivedAtMs);
      if (p === undefined) {
        p = pseudonymizer.pseudonym(e.epoch, site, e.userId, receivedAtMs);
        misses++;
      }
      pending[i] = p;
    }
    // The hot path (every pseudonym cached, no rejected event) does not await at all.
    if (misses === 0 && request.rejected.length === 0) {
      const u = users(pending as Array<PseudonymResult | undefined>);
      return u.kind === 'ok' ? ok({ users: u.value, rejected: [] }) : u;
    }
    return (async (): Promise<RequestResult<Resolved>> => {
      const u = users(misses > 0 ? await Promise.all(pending) : (pending as Array<PseudonymResult | undefined>));
      if (u.kind !== 'ok') return u;
      return ok({ users: u.value, rejected: request.rejected.length > 0 ? await redactRejected(request) : [] });
    })();
  }

  /** Dedup: per event, whether its messageId was already counted; `retry` when the store cannot say. */
  function dedup(request: PreparedRequest): RequestResult<boolean[]> {
    const ids = new Array<string | undefined>(request.events.length);
    for (let i = 0; i < ids.length; i++) ids[i] = (request.events[i] as PreparedEvent).messageId;
    const claim = d.dedup.claim(request.site, ids);
    if (claim.kind === 'busy') {
      return retry('in_flight', 'an event of this request is still being stored by another edge process: retry the same request after the Retry-After delay; it will not be counted twice');
    }
    if (claim.kind === 'unavailable') return retry('dedup_unavailable', 'the retry deduplication store failed; nothing of this request was counted: retry it after the Retry-After delay');
    return ok(claim.duplicate);
  }

  function commit(request: PreparedRequest, resolved: Resolved): RequestResult<IngestSummary> {
    const claimed = dedup(request);
    if (claimed.kind !== 'ok') return claimed;
    const duplicate = claimed.value;
    const summary: IngestSummary = { accepted: 0, duplicates: 0, rejected: request.rejected.map(({ index, messageId, errors }) => ({ index, messageId, errors })) };
    const { events, site } = request;
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as PreparedEvent;
      summary.accepted++;
      if (duplicate[i] === true) {
        summary.duplicates++;
        d.dropped.duplicate_message_id++;
        continue;
      }
      if (e.dimensions === undefined) {
        if (e.dropReason !== undefined) d.dropped[e.dropReason]++;
        continue;
      }
      const user = resolved.users[i];
      if (user === undefined) d.usersNotCounted.salt_expired++;
      d.accumulator.add({
        eventTimeMs: e.eventTimeMs,
        site,
        event: e.name,
        dimensions: e.dimensions,
        user: user?.hash,
        value: e.value,
        // The Workers shards deduplicate durably by messageId (edge/worker, ADR 0004).
        ...(e.messageId !== undefined ? { messageId: e.messageId } : {}),
      });
    }
    if (resolved.rejected.length > 0) d.flusher.addRejected(resolved.rejected);
    d.flusher.rowsAdded();
    return ok(summary);
  }

  return { prepare, resolve, commit };
}

/** An invalid event of a request, with the messageId it is reported under. */
export function rejectedEvent(item: Pick<CheckedEvent, 'index' | 'raw'>, errors: FieldError[]): RejectedEvent {
  return { index: item.index, raw: item.raw, messageId: messageIdOf(item.raw), errors };
}

/**
 * A `prepare` step did not return `ok`: a dropped event is still accepted and deduplicated (a
 * retried bot event counts as a duplicate), so it goes on to `commit`, not counted; a reject or
 * a retry ends the event's (or the request's) way here.
 */
function stopped(r: Reject | Drop | Retry, messageId: string | undefined, eventTimeMs: number): Exclude<StepResult<PreparedEvent>, Drop> {
  if (r.kind !== 'drop') return r;
  return ok({ messageId, dropReason: r.reason, eventTimeMs, name: '', dimensions: undefined, value: undefined, epoch: 0, userId: '' });
}

function messageIdOf(raw: unknown): string | null {
  if (raw === null || typeof raw !== 'object') return null;
  const id = (raw as { messageId?: unknown }).messageId;
  return typeof id === 'string' ? id.slice(0, 100) : null;
}
