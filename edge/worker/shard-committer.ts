import type { AccumulatorEvent } from '../accumulator.ts';
import type { CommitResult, Flusher, FlushOutcome } from '../flusher.ts';
import type { EdgeLog, RejectedRecord } from '../ports.ts';
import type { EventCapture } from './event-capture.ts';
import type { ShardBatch, ShardIngestResult } from './shard-protocol.ts';
import { shardIndex, shardName } from './shard-routing.ts';
import { errorMessage } from '../../shared/errors.ts';

/** Per-isolate memory of a shard saying "overloaded", so later requests are refused before parsing. */
export interface OverloadMemo {
  untilMs: number;
}

export interface ShardCommitterOptions {
  capture: EventCapture;
  shards: number;
  edgeId: string;
  /** Sends one shard its batch (the entry binds this to the Durable Object stub's RPC). */
  ingest(index: number, batch: ShardBatch): Promise<ShardIngestResult>;
  overload: OverloadMemo;
  now: () => number;
  /** Retry-After for failures the shard did not price itself. */
  retryAfterS: number;
  log?: EdgeLog;
}

/**
 * The Worker's {@link Flusher}, one per request: `commit()` sends the request's events to their
 * Durable Object shards (in parallel) and resolves `ok` only when every shard has them in
 * storage. A shard that fails makes the request fail with 503 + Retry-After; the shards that
 * succeeded deduplicate the client's retry by messageId, so nothing is counted twice.
 */
export function createShardCommitter(o: ShardCommitterOptions): Flusher {
  const log: EdgeLog = o.log ?? (() => undefined);
  let rejected: RejectedRecord[] = [];

  async function callShard(index: number, batch: ShardBatch): Promise<ShardIngestResult> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await o.ingest(index, batch);
      } catch (e) {
        // Durable Object errors carry `retryable` (e.g. the object was reset by a deploy); one
        // immediate retry is safe because the shard deduplicates by messageId.
        const retryable = (e as { retryable?: unknown }).retryable === true;
        log({ event: 'shard_call_failed', shard: batch.shard, attempt, retryable, error: errorMessage(e) });
        if (!retryable || attempt >= 1) {
          return { ok: false, code: 'overloaded', retryAfterS: o.retryAfterS, message: 'shard unavailable' };
        }
      }
    }
  }

  async function send(): Promise<{ ok: true; events: number; rejected: number; duplicates: number } | { ok: false; retryAfterS: number; error: string }> {
    const events = o.capture.take();
    const records = rejected;
    rejected = [];
    if (events.length === 0 && records.length === 0) return { ok: true, events: 0, rejected: 0, duplicates: 0 };
    const batches = new Map<number, ShardBatch>();
    const batchOf = (index: number): ShardBatch => {
      let b = batches.get(index);
      if (b === undefined) {
        b = { shard: shardName(o.edgeId, index), events: [], rejected: [] };
        batches.set(index, b);
      }
      return b;
    };
    for (const e of events) batchOf(shardIndex(e, o.shards)).events.push(e);
    for (const r of records) batchOf(shardIndex(rejectedRoutingKey(r), o.shards)).rejected.push(r);

    const results = await Promise.all([...batches].map(([index, batch]) => callShard(index, batch)));
    const failed = results.filter((r): r is Extract<ShardIngestResult, { ok: false }> => !r.ok);
    if (failed.length === 0) return { ok: true, events: events.length, rejected: records.length, duplicates: results.reduce((n, r) => n + (r.ok ? r.duplicates : 0), 0) };
    const retryAfterS = Math.max(o.retryAfterS, ...failed.map((f) => f.retryAfterS));
    if (failed.some((f) => f.code === 'overloaded')) o.overload.untilMs = Math.max(o.overload.untilMs, o.now() + retryAfterS * 1000);
    log({ event: 'shards_not_stored', failed: failed.length, shards: batches.size, codes: [...new Set(failed.map((f) => f.code))] });
    return { ok: false, retryAfterS, error: failed[0]?.message ?? 'shard failed' };
  }

  async function flushNow(): Promise<FlushOutcome> {
    const r = await send();
    return r.ok ? { ok: true, envelopes: 0, rows: r.events, rejected: r.rejected } : { ok: false, pendingEnvelopes: 0, error: r.error };
  }

  return {
    addRejected(records) {
      for (const r of records) rejected.push(r);
    },
    rowsAdded() {
      // Nothing to do: the shards decide when to flush to the gateway.
    },
    async commit(): Promise<CommitResult> {
      const r = await send();
      return r.ok ? { ok: true, duplicates: r.duplicates } : { ok: false, retryAfterS: r.retryAfterS };
    },
    overloaded() {
      return o.now() < o.overload.untilMs;
    },
    retryAfterS: o.retryAfterS,
    flushNow,
    tick: flushNow,
    close: flushNow,
    stats() {
      return { sequence: 0, watermarkMs: 0, pendingEnvelopes: 0, pendingRows: o.capture.rowCount, bufferedRejected: rejected.length, waitingRequests: 0 };
    },
  };
}

function rejectedRoutingKey(r: RejectedRecord): Pick<AccumulatorEvent, 'site' | 'messageId' | 'user' | 'eventTimeMs'> {
  return { site: r.site, user: undefined, eventTimeMs: r.index, ...(r.message_id !== null ? { messageId: r.message_id } : {}) };
}
