import type { SegmentEvent } from '../../schemas/validators.ts';
import { ok, reject, type StepResult } from './step-result.ts';

/** How an event's time was decided, for tests and debugging. */
export type EventTimeSource = 'corrected' | 'client' | 'received' | 'clamped';

export interface EventTime {
  eventTimeMs: number;
  source: EventTimeSource;
}

/**
 * Event time, not arrival time (ARCHITECTURE §3.2). As Segment does, the client's clock is trusted
 * for intervals but not for absolute time: `eventTime = timestamp + (receivedAt - sentAt)`.
 * Without `sentAt` the client timestamp is used as sent (server SDKs, historical imports);
 * without a usable timestamp the receive time is used. A result more than `maxFutureSkewMs`
 * ahead of the receive time is clamped to `receivedAt + maxFutureSkewMs`.
 *
 * Rejected with reason `invalid_event_time` (docs/EDGE.md "Event time"): a `timestamp`,
 * `originalTimestamp` or `sentAt` that names no calendar instant (February 30, hour 24), and an
 * event time before {@link MIN_EVENT_TIME_MS} (1970-01-01), which only a forged or inconsistent
 * `sentAt` produces (a `sentAt` in year 9999 would otherwise move the event thousands of years
 * back, below what a ClickHouse DateTime64 holds).
 *
 * @example
 * ```ts
 * const eventTime = createEventTimeStep({ maxFutureSkewMs: 300_000 });
 * eventTime(event, { receivedAtMs: Date.now(), batchSentAt: body.sentAt });
 * ```
 */
export function createEventTimeStep(o: { maxFutureSkewMs: number }) {
  // sentAt repeats for every event of a batch (SDKs stamp the whole batch): remember the last one.
  let lastSentAt: string | undefined;
  let lastSentAtMs: number | undefined;
  return (event: SegmentEvent, ctx: { receivedAtMs: number; batchSentAt?: string | undefined }): StepResult<EventTime> => {
    const clientText = event.timestamp ?? event.originalTimestamp;
    const client = parseTime(clientText);
    if (clientText !== undefined && client === undefined) {
      return invalidTime(event.timestamp !== undefined ? '/timestamp' : '/originalTimestamp', `${JSON.stringify(clientText)} is not a calendar date-time: send an RFC 3339 time such as 2026-11-22T10:00:00.000Z`);
    }
    const sentAtText = event.sentAt ?? ctx.batchSentAt;
    if (sentAtText !== lastSentAt) {
      lastSentAt = sentAtText;
      lastSentAtMs = parseTime(sentAtText);
    }
    const sentAt = lastSentAtMs;
    if (sentAtText !== undefined && sentAt === undefined) {
      const where = event.sentAt !== undefined ? 'sentAt' : "the batch's sentAt";
      return invalidTime('/sentAt', `${where} ${JSON.stringify(sentAtText)} is not a calendar date-time: send an RFC 3339 time such as 2026-11-22T10:00:00.000Z`);
    }
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
    if (eventTimeMs < MIN_EVENT_TIME_MS) {
      const what = source === 'corrected' ? `the event time (timestamp ${JSON.stringify(clientText)} moved by receivedAt − sentAt, sentAt ${JSON.stringify(sentAtText)})` : `the timestamp ${JSON.stringify(clientText)}`;
      return invalidTime(source === 'corrected' ? '/sentAt' : '/timestamp', `${what} is before 1970-01-01T00:00:00Z: check the client clock and its sentAt`);
    }
    return ok({ eventTimeMs, source });
  };
}

/**
 * Earliest event time accepted: 1970-01-01T00:00:00Z. No analytics event predates it, and every
 * window from it on is a valid ClickHouse DateTime64 (whose range starts in 1900).
 */
export const MIN_EVENT_TIME_MS = 0;

function invalidTime(path: string, message: string): StepResult<EventTime> {
  return reject('invalid_event_time', [{ path, message }]);
}

/** Epoch ms of an RFC 3339 date-time, or undefined for anything else (Feb 30 included). */
export function parseTime(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  return parseRfc3339(value) ?? parseTimeSlow(value);
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * The hot path: `YYYY-MM-DDTHH:MM:SS[.fff...](Z|±HH:MM)` read digit by digit, without a regular
 * expression or Date.parse (this runs twice per event). Returns undefined for anything it does
 * not handle, which then goes through {@link parseTimeSlow}. Fractions past milliseconds are
 * truncated, as Date.parse does.
 */
function parseRfc3339(v: string): number | undefined {
  const n = v.length;
  if (n < 20 || v.charCodeAt(4) !== 45 || v.charCodeAt(7) !== 45 || (v.charCodeAt(10) | 0x20) !== 0x74 || v.charCodeAt(13) !== 58 || v.charCodeAt(16) !== 58) return undefined;
  const year = digits(v, 0, 4);
  const month = digits(v, 5, 2);
  const day = digits(v, 8, 2);
  const hour = digits(v, 11, 2);
  const minute = digits(v, 14, 2);
  const second = digits(v, 17, 2);
  if ((year | month | day | hour | minute | second) < 0 || year < 100 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (DAYS_IN_MONTH[month - 1] as number) + (leap ? 1 : 0)) return undefined;
  let i = 19;
  let ms = 0;
  if (v.charCodeAt(i) === 46) {
    let scale = 100;
    i++;
    const start = i;
    while (i < n) {
      const d = v.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      ms += d * scale;
      scale /= 10;
      i++;
    }
    if (i === start) return undefined;
    ms = Math.floor(ms);
  }
  let offsetMin = 0;
  const zone = v.charCodeAt(i);
  if ((zone | 0x20) === 0x7a) {
    if (i + 1 !== n) return undefined;
  } else if ((zone === 43 || zone === 45) && i + 6 === n && v.charCodeAt(i + 3) === 58) {
    const oh = digits(v, i + 1, 2);
    const om = digits(v, i + 4, 2);
    if (oh < 0 || om < 0 || oh > 23 || om > 59) return undefined;
    offsetMin = (zone === 43 ? 1 : -1) * (oh * 60 + om);
  } else {
    return undefined;
  }
  return Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMin * 60_000;
}

/** The number written by `len` ASCII digits at `at`, or -1. */
function digits(v: string, at: number, len: number): number {
  let out = 0;
  for (let i = at; i < at + len; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    out = out * 10 + d;
  }
  return out;
}

function parseTimeSlow(value: string): number | undefined {
  // The schema checked the shape; the calendar is checked here because Date.parse silently
  // rolls Feb 30 over into March.
  const ymd = /^(\d{4})-(\d{2})-(\d{2})/.exec(value);
  if (ymd === null) return undefined;
  const [year, month, day] = [Number(ymd[1]), Number(ymd[2]), Number(ymd[3])];
  if (day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}
