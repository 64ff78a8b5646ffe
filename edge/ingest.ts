import { hash64FromHex } from '../core/algebra/index.ts';
import type { EdgeConfig } from './config.ts';
import type { Accumulator } from './accumulator.ts';
import type { Flusher } from './flusher.ts';
import type { RejectedRecord } from './ports.ts';
import type { RequestEvents } from './request-events.ts';
import type { FieldError, SegmentEvent } from '../schemas/validators.ts';
import { createDeduplicator } from './pipeline/dedup.ts';
import { eventName, extractDimensions, numericValue } from './pipeline/dimensions.ts';
import { createEventTimeStep } from './pipeline/event-time.ts';
import { createPseudonymizer, rawUserId } from './pipeline/pseudonymize.ts';
import { redactEvent } from './pipeline/redact.ts';

/** What happened to a request's events, as reported to the client. */
export interface IngestSummary {
  accepted: number;
  /** Accepted events whose messageId was already counted (client retries). */
  duplicates: number;
  rejected: Array<{ index: number; messageId: string | null; errors: FieldError[] }>;
}

export interface IngestContext {
  site: string;
  receivedAtMs: number;
  /** From a trusted source (proxy header, platform), never from the body. */
  country: string | undefined;
}

/**
 * The per-event pipeline after validation: event time -> pseudonymize -> dedup -> accumulate,
 * plus redaction of rejected events for the rejected sink. State (pseudonym cache, dedup set)
 * lives as long as the edge instance.
 */
export function createIngest(o: { config: EdgeConfig; accumulator: Accumulator; flusher: Flusher }) {
  const eventTime = createEventTimeStep({ maxFutureSkewMs: o.config.maxFutureSkewMs });
  const pseudonymizer = createPseudonymizer({ salt: o.config.pseudonymSalt });
  const dedup = createDeduplicator({ capacity: o.config.dedupCapacity });

  async function pseudonymOf(site: string, raw: unknown): Promise<string | undefined> {
    if (raw === null || typeof raw !== 'object') return undefined;
    const { userId, anonymousId } = raw as { userId?: unknown; anonymousId?: unknown };
    const id = [userId, anonymousId].find((v) => (typeof v === 'string' && v !== '') || (typeof v === 'number' && Number.isFinite(v)));
    return id === undefined ? undefined : pseudonymizer.pseudonym(site, String(id));
  }

  return async function ingest(req: RequestEvents, ctx: IngestContext): Promise<IngestSummary> {
    const summary: IngestSummary = { accepted: 0, duplicates: 0, rejected: [] };
    const records: RejectedRecord[] = [];
    const valid: Array<{ event: SegmentEvent; pseudonym: Promise<string> }> = [];
    const receivedAt = new Date(ctx.receivedAtMs).toISOString();

    for (const item of req.events) {
      const r = item.result;
      if (r.kind === 'ok') {
        // Schema guarantees userId or anonymousId.
        valid.push({ event: r.value, pseudonym: pseudonymizer.pseudonym(ctx.site, rawUserId(r.value) ?? '') });
      } else if (r.kind === 'reject') {
        const messageId = messageIdOf(item.raw);
        summary.rejected.push({ index: item.index, messageId, errors: r.errors });
        records.push({
          site: ctx.site,
          received_at: receivedAt,
          index: item.index,
          message_id: messageId,
          errors: r.errors,
          event: redactEvent(item.raw, await pseudonymOf(ctx.site, item.raw)),
        });
      }
    }
    const pseudonyms = await Promise.all(valid.map((v) => v.pseudonym));

    // From here to the end nothing awaits: dedup marks and accumulator adds happen together,
    // so a concurrent retry of the same messageId and a concurrent flush see both or neither.
    valid.forEach(({ event }, i) => {
      summary.accepted++;
      if (dedup.check(ctx.site, event.messageId).kind === 'drop') {
        summary.duplicates++;
        return;
      }
      const time = eventTime(event, { receivedAtMs: ctx.receivedAtMs, batchSentAt: req.batchSentAt }).value;
      o.accumulator.add({
        eventTimeMs: time.eventTimeMs,
        site: ctx.site,
        event: eventName(event),
        dimensions: extractDimensions(event, o.config.dimensions, { batchContext: req.batchContext, country: ctx.country }),
        user: hash64FromHex(pseudonyms[i] as string),
        value: numericValue(event),
      });
    });
    if (records.length > 0) o.flusher.addRejected(records);
    o.flusher.rowsAdded();
    return summary;
  };
}

function messageIdOf(raw: unknown): string | null {
  if (raw === null || typeof raw !== 'object') return null;
  const id = (raw as { messageId?: unknown }).messageId;
  return typeof id === 'string' ? id.slice(0, 100) : null;
}
