import type { SegmentEvent } from '../../schemas/validators.ts';
import { ok } from './step-result.ts';

/** How an event's time was decided, for tests and debugging. */
export type EventTimeSource = 'corrected' | 'client' | 'received' | 'clamped';

export interface EventTime {
  eventTimeMs: number;
  source: EventTimeSource;
}

/**
 * Event time, not arrival time (DESIGN §3.2). As Segment does, the client's clock is trusted
 * for intervals but not for absolute time: `eventTime = timestamp + (receivedAt - sentAt)`.
 * Without `sentAt` the client timestamp is used as sent (server SDKs, historical imports);
 * without a usable timestamp the receive time is used. A result more than `maxFutureSkewMs`
 * ahead of the receive time is clamped to `receivedAt + maxFutureSkewMs`.
 *
 * @example
 * ```ts
 * const eventTime = createEventTimeStep({ maxFutureSkewMs: 300_000 });
 * eventTime(event, { receivedAtMs: Date.now(), batchSentAt: body.sentAt });
 * ```
 */
export function createEventTimeStep(o: { maxFutureSkewMs: number }) {
  return (event: SegmentEvent, ctx: { receivedAtMs: number; batchSentAt?: string | undefined }): { kind: 'ok'; value: EventTime } => {
    const client = parseTime(event.timestamp ?? event.originalTimestamp);
    const sentAt = parseTime(event.sentAt ?? ctx.batchSentAt);
    let eventTimeMs: number;
    let source: EventTimeSource;
    if (client === undefined) {
      eventTimeMs = ctx.receivedAtMs;
      source = 'received';
    } else if (sentAt === undefined) {
      eventTimeMs = client;
      source = 'client';
    } else {
      eventTimeMs = client + (ctx.receivedAtMs - sentAt);
      source = 'corrected';
    }
    const latest = ctx.receivedAtMs + o.maxFutureSkewMs;
    if (eventTimeMs > latest) {
      eventTimeMs = latest;
      source = 'clamped';
    }
    return ok({ eventTimeMs, source });
  };
}

function parseTime(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  // The schema checked the shape; the calendar is checked here because Date.parse silently
  // rolls Feb 30 over into March.
  const ymd = /^(\d{4})-(\d{2})-(\d{2})/.exec(value);
  if (ymd === null) return undefined;
  const [year, month, day] = [Number(ymd[1]), Number(ymd[2]), Number(ymd[3])];
  if (day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}
