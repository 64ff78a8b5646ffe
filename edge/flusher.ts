import { encodeEnvelope, type PartialRow } from '../shared/algebra/index.ts';
import type { Accumulator } from './accumulator.ts';
import type { EdgeLog, RejectedRecord } from './ports.ts';
import { mayRetryNow, type PipelineSink } from '../shared/ports/pipeline-sink.ts';
import { jitteredBackoffMs } from '../shared/backoff.ts';
import { errorMessage } from '../shared/errors.ts';
import { sleep as timerSleep } from '../shared/time.ts';

export interface FlusherOptions {
  sourceId: string;
  accumulator: Accumulator;
  /** Where envelopes and rejected records go; a send resolves once durable (see {@link PipelineSink}). */
  sink: PipelineSink;
  now: () => number;
  flushIntervalMs: number;
  /**
   * Group commit without the wait: the first request that needs an acknowledgement schedules a
   * flush this many ms later; requests arriving meanwhile share it. Unset: only the timer flushes.
   */
  commitDelayMs?: number;
  heartbeatMs: number;
  watermarkDelayMs: number;
  /** Rows that trigger a flush at once, and the most rows per envelope. */
  flushMaxRows: number;
  /** Unacknowledged rows (or rejected records) beyond which {@link Flusher.overloaded} is true. */
  maxPendingRows: number;
  /** Sink retries per flush after the first attempt (none after an error with `retriable: false`). Default 3. */
  retries?: number;
  /** First backoff delay; doubles per retry, with jitter. Default 100 ms. */
  backoffBaseMs?: number;
  /** Envelopes larger than this are split (Kafka's default message limit is 1 MB). Default 900 000. */
  maxEnvelopeBytes?: number;
  /** First sequence number. Default `now()`, so a restarted edge that reuses its sourceId still moves forward. */
  initialSequence?: number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  log?: EdgeLog;
  /**
   * Told when the accumulator is drained and when everything drained so far is acknowledged,
   * so the dedup marks of those events become committed (edge/pipeline/dedup.ts).
   */
  marks?: { drained(): void; acknowledged(): void };
  /**
   * Called synchronously right after `marks.drained()` with the envelopes encoded from that
   * drain, before any of them is sent: the Node edge journals them (edge/node/flush-journal.ts).
   */
  journal?: (envelopes: ReadonlyArray<{ key: string; sequence: number; bytes: Uint8Array; rows: number }>) => void;
}

/** The answer a request waiting for durability gets. */
/** `duplicates`: events the sink itself found already stored (Workers shards), added to the answer's count. */
export type CommitResult = { ok: true; duplicates?: number } | { ok: false; retryAfterS: number };

export type FlushOutcome =
  | { ok: true; envelopes: number; rows: number; rejected: number }
  | { ok: false; pendingEnvelopes: number; error: string };

/** Group commit of partial rows to the sink; see {@link createFlusher}. */
export interface Flusher {
  /** Queues redacted rejected events to go out with the next flush. */
  addRejected(records: RejectedRecord[]): void;
  /** Call after adding rows to the accumulator: flushes at once when rows reach `flushMaxRows`. */
  rowsAdded(): void;
  /**
   * Resolves once a flush that started after this call has been acknowledged by the sinks,
   * i.e. everything accumulated before the call is durable; `ok: false` when that flush failed.
   */
  commit(): Promise<CommitResult>;
  /** True while buffered rows or rejected records exceed the cap: refuse new events (503). */
  overloaded(): boolean;
  /** Seconds a refused client should wait. */
  readonly retryAfterS: number;
  /** Flushes now (after a running flush, if any). */
  flushNow(): Promise<FlushOutcome>;
  /** Timer hook, call every `flushIntervalMs`: flushes pending work, or sends a heartbeat when idle long enough. */
  tick(): Promise<FlushOutcome | undefined>;
  /** Flushes what is left. */
  close(): Promise<FlushOutcome>;
  stats(): { sequence: number; watermarkMs: number; pendingEnvelopes: number; pendingRows: number; bufferedRejected: number; waitingRequests: number };
}

interface EncodedEnvelope {
  sequence: number;
  bytes: Uint8Array;
  rows: number;
}

interface Waiter {
  resolve(r: CommitResult): void;
}

/**
 * Group commit (ARCHITECTURE §3.1): rows from many requests go out in one `PartialEnvelope`, and a
 * request is answered only after the flush carrying its rows has been acknowledged.
 *
 * No loss, no double count: an envelope is encoded once, with its sequence number, and kept
 * until the sink acknowledges it. A failed send is retried with jittered backoff; if it still
 * fails the waiting requests get 503 + Retry-After and the *same* envelope (same sequence) is
 * sent first by the next flush, so the aggregator's (source, sequence) dedup absorbs a send
 * that was in fact written before the failure was reported. Clients retrying the 503 are
 * deduplicated by messageId at the edge.
 *
 * Watermark: `now - watermarkDelayMs`, never decreasing; when idle an empty envelope is sent
 * every `heartbeatMs` so the aggregator's minimum over sources keeps moving.
 *
 * @example
 * ```ts
 * const flusher = createFlusher({ sourceId, accumulator, sink, now: Date.now,
 *   flushIntervalMs: 1000, heartbeatMs: 5000, watermarkDelayMs: 1000, flushMaxRows: 2000, maxPendingRows: 50_000 });
 * setInterval(() => void flusher.tick(), 1000);
 * ```
 */
export function createFlusher(o: FlusherOptions): Flusher {
  const retries = o.retries ?? 3;
  const backoffBaseMs = o.backoffBaseMs ?? 100;
  const maxEnvelopeBytes = o.maxEnvelopeBytes ?? 900_000;
  const sleep = o.sleep ?? timerSleep;
  const random = o.random ?? Math.random;
  const log: EdgeLog = o.log ?? (() => undefined);
  const retryAfterS = Math.max(1, Math.ceil((o.flushIntervalMs + backoffBaseMs * 2 ** retries) / 1000));

  let nextSequence = o.initialSequence ?? Math.max(1, Math.floor(o.now()));
  let watermarkMs = o.now() - o.watermarkDelayMs;
  let lastSentAtMs = Number.NEGATIVE_INFINITY;
  const pending: EncodedEnvelope[] = [];
  let rejectedBuffer: RejectedRecord[] = [];
  let waiters: Waiter[] = [];
  let running: Promise<FlushOutcome> | undefined;
  let commitTimer: ReturnType<typeof setTimeout> | undefined;
  let queued: Promise<FlushOutcome> | undefined;

  const pendingRows = (): number => o.accumulator.rowCount + pending.reduce((n, e) => n + e.rows, 0);

  function encodeRows(rows: PartialRow[], now: number): void {
    const previous = watermarkMs;
    watermarkMs = Math.max(watermarkMs, now - o.watermarkDelayMs);
    const chunks = splitRows(rows, o.flushMaxRows);
    chunks.forEach((chunk, i) => {
      // Only the last envelope of a drain advances the watermark: the rows before it were
      // accumulated before the new watermark was taken.
      const last = i === chunks.length - 1;
      for (const envelope of encodeSized(chunk, last ? watermarkMs : previous, now)) pending.push(envelope);
    });
  }

  function encodeSized(rows: PartialRow[], wm: number, now: number): EncodedEnvelope[] {
    const sequence = nextSequence;
    const bytes = encodeEnvelope({ version: 1, sourceId: o.sourceId, sequence, watermarkMs: wm, createdAtMs: now, rows });
    if (bytes.byteLength > maxEnvelopeBytes && rows.length > 1) {
      const mid = Math.ceil(rows.length / 2);
      return [...encodeSized(rows.slice(0, mid), wm, now), ...encodeSized(rows.slice(mid), wm, now)];
    }
    nextSequence++;
    return [{ sequence, bytes, rows: rows.length }];
  }

  async function withRetry(what: string, send: () => Promise<void>): Promise<string | undefined> {
    let lastError = '';
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) {
        // Equal jitter: never zero, never in lockstep with other edges; uncapped (`retries` bounds it).
        await sleep(jitteredBackoffMs(attempt, backoffBaseMs, Infinity, random));
      }
      try {
        await send();
        return undefined;
      } catch (e) {
        lastError = errorMessage(e);
        log({ event: 'sink_send_failed', sink: what, attempt, error: lastError });
        if (!mayRetryNow(e)) break;
      }
    }
    return lastError || 'unknown error';
  }

  async function flushOnce(): Promise<FlushOutcome> {
    const myWaiters = waiters;
    waiters = [];
    try {
      return await flushFor(myWaiters);
    } catch (e) {
      // A bug (e.g. an encoder invariant), not a sink failure: answer the waiters, then surface it.
      for (const w of myWaiters) w.resolve({ ok: false, retryAfterS });
      throw e;
    }
  }

  async function flushFor(myWaiters: Waiter[]): Promise<FlushOutcome> {
    const now = o.now();
    const rows = o.accumulator.drain();
    // Nothing awaits between the drain and this: marks made after it belong to the next drain.
    o.marks?.drained();
    const rejected = rejectedBuffer;
    rejectedBuffer = [];
    const heartbeatDue = now - lastSentAtMs >= o.heartbeatMs;
    const encodedFrom = pending.length;
    if (rows.length > 0 || (pending.length === 0 && heartbeatDue)) encodeRows(rows, now);
    if (o.journal !== undefined && pending.length > encodedFrom) o.journal(pending.slice(encodedFrom).map((e) => ({ key: o.sourceId, sequence: e.sequence, bytes: e.bytes, rows: e.rows })));

    let error: string | undefined;
    let envelopes = 0;
    while (pending.length > 0 && error === undefined) {
      const envelope = pending[0] as EncodedEnvelope;
      error = await withRetry('partials', () => o.sink.sendPartials({ key: o.sourceId, value: envelope.bytes }));
      if (error === undefined) {
        pending.shift();
        envelopes++;
        lastSentAtMs = now;
      }
    }
    if (error === undefined && rejected.length > 0) {
      error = await withRetry('rejected', () => o.sink.sendRejected(rejected));
    }
    if (error !== undefined) {
      // Keep what was not acknowledged; the partial envelopes already sit in `pending`.
      rejectedBuffer = rejected.concat(rejectedBuffer);
      log({ event: 'flush_failed', pending_envelopes: pending.length, error });
      for (const w of myWaiters) w.resolve({ ok: false, retryAfterS });
      return { ok: false, pendingEnvelopes: pending.length, error };
    }
    // `pending` is empty: every envelope encoded up to this drain is acknowledged.
    o.marks?.acknowledged();
    if (envelopes > 0 || rejected.length > 0) log({ event: 'flushed', envelopes, rows: rows.length, rejected: rejected.length, sequence: nextSequence - 1, watermark_ms: watermarkMs });
    for (const w of myWaiters) w.resolve({ ok: true });
    return { ok: true, envelopes, rows: rows.length, rejected: rejected.length };
  }

  function flushNow(): Promise<FlushOutcome> {
    if (running === undefined) {
      running = flushOnce().finally(() => {
        running = undefined;
      });
      return running;
    }
    // One flush runs at a time (envelopes must reach the sink in sequence order); callers
    // arriving meanwhile share a single follow-up flush.
    queued ??= running.then(
      () => {
        queued = undefined;
        return flushNow();
      },
      () => {
        queued = undefined;
        return flushNow();
      },
    );
    return queued;
  }

  return {
    addRejected(records) {
      for (const r of records) rejectedBuffer.push(r);
    },
    rowsAdded() {
      if (o.accumulator.rowCount >= o.flushMaxRows) {
        flushNow().catch((e: unknown) => log({ event: 'flush_crashed', error: errorMessage(e) }));
      }
    },
    commit() {
      const result = new Promise<CommitResult>((resolve) => waiters.push({ resolve }));
      if (o.commitDelayMs !== undefined && o.commitDelayMs > 0 && commitTimer === undefined) {
        commitTimer = setTimeout(() => {
          commitTimer = undefined;
          flushNow().catch((e: unknown) => log({ event: 'flush_crashed', error: errorMessage(e) }));
        }, o.commitDelayMs);
      }
      return result;
    },
    overloaded() {
      return pendingRows() >= o.maxPendingRows || rejectedBuffer.length >= o.maxPendingRows;
    },
    retryAfterS,
    flushNow,
    async tick() {
      const busy = o.accumulator.rowCount > 0 || pending.length > 0 || rejectedBuffer.length > 0 || waiters.length > 0;
      if (busy || o.now() - lastSentAtMs >= o.heartbeatMs) return flushNow();
      return undefined;
    },
    async close() {
      if (commitTimer !== undefined) clearTimeout(commitTimer);
      commitTimer = undefined;
      if (running !== undefined) await running.catch(() => undefined);
      return flushNow();
    },
    stats() {
      return { sequence: nextSequence - 1, watermarkMs, pendingEnvelopes: pending.length, pendingRows: pendingRows(), bufferedRejected: rejectedBuffer.length, waitingRequests: waiters.length };
    },
  };
}

function splitRows(rows: PartialRow[], size: number): PartialRow[][] {
  if (rows.length <= size) return [rows];
  const out: PartialRow[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}
