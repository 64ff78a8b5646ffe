import { DurableObject } from 'cloudflare:workers';
import { createAccumulator, type Accumulator, type AccumulatorEvent } from '../accumulator.ts';
import { createGatewayClient, createGatewaySink, gatewayFailure, type GatewayResult } from '../gateway-client.ts';
import type { EdgeLog } from '../ports.ts';
import { sealEnvelopes } from './seal.ts';
import type { ShardBatch, ShardIngestResult, ShardStats } from './shard-protocol.ts';
import { shardSourceId } from './shard-routing.ts';
import { openShardStorage, type ShardStorage } from './shard-storage.ts';
import { workerConfig, type WorkerEdgeConfig } from './worker-config.ts';
import { jitteredBackoffMs } from '../../shared/backoff.ts';
import type { PipelineSink } from '../../shared/ports/pipeline-sink.ts';

/** Kafka's default message limit is 1 MB; stay clear of it like the Node flusher. */
const MAX_ENVELOPE_BYTES = 900_000;
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 60_000;
/** Send/seal rounds per alarm before yielding to a fresh alarm (bounds one alarm's duration). */
const MAX_ROUNDS = 8;
const REJECTED_PER_POST = 500;
const REJECTED_BYTES_PER_POST = 1_000_000;
const MISCONFIGURED_RETRY_MS = 60_000;

const log: EdgeLog = (fields) => console.log(JSON.stringify({ component: 'edge-shard', ...fields }));

/**
 * One Durable Object shard of the Workers edge (ADR 0004). It holds acknowledged events in its
 * SQLite storage, aggregates them into partial rows, and sends them as signed envelopes to the
 * gateway from its alarm, through the gateway's {@link PipelineSink}:
 *
 * - `ingest()` deduplicates by (site, messageId) and stores the batch in one transaction; the RPC
 *   answer is held by the output gate until that write is durable, so a 2xx to the client means
 *   "in storage";
 * - the alarm seals pending events into envelopes (sourceId `do-<shard>`, next sequence from
 *   storage, monotone watermark) kept as exact bytes in an outbox, POSTs them in sequence order,
 *   and deletes each only after the gateway's 200. A retry re-sends the same bytes, so the
 *   gateway's (sourceId, sequence) deduplication absorbs a POST that succeeded unseen;
 * - failures back off with jitter through the alarm; while more than `MAX_PENDING_ROWS` events
 *   and rows wait, `ingest()` answers `overloaded` and clients get 503 + Retry-After.
 */
export class EdgeShard extends DurableObject<Env> {
  private readonly store: ShardStorage;
  private accumulator: Accumulator | undefined;
  private sink: PipelineSink | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = openShardStorage(ctx.storage.sql);
  }

  /** Stores one request's events for this shard; see the class comment. */
  async ingest(batch: ShardBatch): Promise<ShardIngestResult> {
    const parsed = workerConfig(this.env);
    if (!parsed.ok) return { ok: false, code: 'misconfigured', retryAfterS: 60, message: 'the edge configuration is not valid (see the Worker logs)' };
    const c = parsed.config;
    const now = Date.now();
    if (this.overloaded(c)) {
      return { ok: false, code: 'overloaded', retryAfterS: this.retryAfterS(c), message: 'the shard holds too many unsent events (MAX_PENDING_ROWS)' };
    }
    const dedup = c.edge.dedupWindowMs > 0;
    const result = this.ctx.storage.transactionSync(() => {
      if (this.store.getMeta('shard') === undefined) this.store.setMeta('shard', batch.shard);
      const fresh: AccumulatorEvent[] = [];
      let duplicates = 0;
      for (const { messageId, ...event } of batch.events) {
        if (dedup && messageId !== undefined && !this.store.markSeen(`${event.site}\u0000${messageId}`, now)) duplicates++;
        else fresh.push(event);
      }
      if (dedup) this.store.expireSeen(now - c.edge.dedupWindowMs);
      this.store.addPending(fresh);
      this.store.addRejected(batch.rejected);
      if (fresh.length > 0) this.store.setMeta('last_data_ms', now);
      return { stored: fresh.length, duplicates };
    });
    await this.ensureAlarm(c, now);
    return { ok: true, ...result };
  }

  /** The shard's state (pending work, sequence, watermark, retry state). */
  async stats(): Promise<ShardStats> {
    const parsed = workerConfig(this.env);
    const shard = this.store.getMeta('shard') ?? null;
    const outbox = this.store.outboxStats();
    return {
      shard,
      sourceId: shard === null ? null : shardSourceId(shard),
      pendingEvents: this.store.pendingEvents(),
      outboxEnvelopes: outbox.envelopes,
      outboxRows: outbox.rows,
      rejectedRecords: this.store.rejectedCount(),
      nextSequence: this.store.getMetaNumber('next_sequence') ?? null,
      watermarkMs: this.store.getMetaNumber('watermark_ms') ?? null,
      failedAttempts: this.store.getMetaNumber('attempts') ?? 0,
      lastError: this.store.getMeta('last_error') ?? null,
      alarmAtMs: await this.ctx.storage.getAlarm(),
      overloaded: parsed.ok ? this.overloaded(parsed.config) : false,
    };
  }

  /** Flush: send the outbox, then rejected records, then seal what is pending; repeat a few rounds. */
  override async alarm(): Promise<void> {
    const parsed = workerConfig(this.env);
    const shard = this.store.getMeta('shard');
    if (shard === undefined) return; // never stored anything
    if (!parsed.ok) {
      // Keep the rows and look again later: a deploy with fixed settings resumes the flush.
      log({ event: 'shard_misconfigured', errors: parsed.errors });
      await this.ctx.storage.setAlarm(Date.now() + MISCONFIGURED_RETRY_MS);
      return;
    }
    const c = parsed.config;
    const sink = (this.sink ??= createGatewaySink(createGatewayClient(c.gateway)));
    const sourceId = shardSourceId(shard);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      // Each deleted only once its send resolved, i.e. Kafka acknowledged it behind the gateway.
      for (let head = this.store.outboxHead(); head !== undefined; head = this.store.outboxHead()) {
        try {
          await sink.sendPartials({ key: sourceId, value: head.body });
        } catch (e) {
          return this.retryLater(c, gatewayFailure(e));
        }
        this.store.deleteOutbox(head.sequence);
        this.store.setMeta('last_sent_ms', Date.now());
      }
      const rejected = this.store.rejectedBatch(REJECTED_PER_POST, REJECTED_BYTES_PER_POST);
      if (rejected !== undefined) {
        try {
          await sink.sendRejected(rejected.records);
        } catch (e) {
          return this.retryLater(c, gatewayFailure(e));
        }
        this.store.deleteRejectedUpTo(rejected.lastId);
      }
      if (!this.seal(c, sourceId, Date.now())) break;
    }
    if ((this.store.getMetaNumber('attempts') ?? 0) > 0) log({ event: 'gateway_recovered', shard });
    this.store.setMeta('attempts', 0);
    await this.scheduleNext(c);
  }

  /** Moves pending events into outbox envelopes in one transaction; false when there was nothing to seal. */
  private seal(c: WorkerEdgeConfig, sourceId: string, now: number): boolean {
    return this.ctx.storage.transactionSync(() => {
      const { events, lastId, remaining } = this.store.takePending(c.edge.flushMaxRows);
      if (events.length === 0 && !this.heartbeatDue(c, now)) return false;
      const acc = (this.accumulator ??= createAccumulator({ windowSizeMs: c.edge.windowSizeMs, cardinalityCap: c.edge.cardinalityCap }));
      for (const e of events) acc.add(e);
      const previousWatermarkMs = this.store.getMetaNumber('watermark_ms') ?? now - c.edge.watermarkDelayMs;
      // Only a seal that empties `pending` may advance the watermark: events still pending were
      // received before `now` and would otherwise arrive behind their own source's watermark.
      const watermarkMs = remaining ? previousWatermarkMs : Math.max(previousWatermarkMs, now - c.edge.watermarkDelayMs);
      // Starting at the clock (ms) keeps sequences increasing even if this shard's storage is ever wiped.
      const firstSequence = this.store.getMetaNumber('next_sequence') ?? Math.max(1, Math.floor(now));
      const sealed = sealEnvelopes({
        rows: acc.drain(),
        sourceId,
        firstSequence,
        previousWatermarkMs,
        watermarkMs,
        createdAtMs: now,
        flushMaxRows: c.edge.flushMaxRows,
        maxEnvelopeBytes: MAX_ENVELOPE_BYTES,
      });
      for (const s of sealed) this.store.addOutbox(s.sequence, s.bytes, s.rows);
      if (events.length > 0) this.store.deletePendingUpTo(lastId);
      this.store.setMeta('next_sequence', firstSequence + sealed.length);
      this.store.setMeta('watermark_ms', watermarkMs);
      return true;
    });
  }

  /** Heartbeats keep the watermark moving for `HEARTBEAT_TAIL_MS` after the last event, then the shard sleeps. */
  private heartbeatDue(c: WorkerEdgeConfig, now: number): boolean {
    const lastData = this.store.getMetaNumber('last_data_ms');
    const lastSent = this.store.getMetaNumber('last_sent_ms') ?? Number.NEGATIVE_INFINITY;
    return lastData !== undefined && now - lastData <= c.heartbeatTailMs && now - lastSent >= c.edge.heartbeatMs;
  }

  private overloaded(c: WorkerEdgeConfig): boolean {
    const rows = this.store.pendingEvents() + this.store.outboxStats().rows;
    return rows >= c.edge.maxPendingRows || this.store.rejectedCount() >= c.edge.maxPendingRows;
  }

  private retryAfterS(c: WorkerEdgeConfig): number {
    const attempts = this.store.getMetaNumber('attempts') ?? 0;
    const backoffMs = attempts > 0 ? Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** attempts) : 0;
    return Math.max(1, Math.ceil((c.edge.flushIntervalMs + backoffMs) / 1000));
  }

  private async ensureAlarm(c: WorkerEdgeConfig, now: number): Promise<void> {
    const at = await this.ctx.storage.getAlarm();
    const backingOff = (this.store.getMetaNumber('attempts') ?? 0) > 0;
    if (at === null) await this.ctx.storage.setAlarm(now + c.edge.flushIntervalMs);
    // Flush on size at once, unless the gateway is failing (then the backoff stands).
    else if (!backingOff && at > now && this.store.pendingEvents() >= c.edge.flushMaxRows) await this.ctx.storage.setAlarm(now);
  }

  private async scheduleNext(c: WorkerEdgeConfig): Promise<void> {
    const now = Date.now();
    const pending = this.store.pendingEvents();
    const lastData = this.store.getMetaNumber('last_data_ms');
    let next: number | undefined;
    if (pending >= c.edge.flushMaxRows) next = now;
    else if (pending > 0 || this.store.outboxStats().envelopes > 0 || this.store.rejectedCount() > 0) next = now + c.edge.flushIntervalMs;
    else if (lastData !== undefined && now - lastData <= c.heartbeatTailMs) next = now + c.edge.heartbeatMs;
    // No deleteAlarm(): an ingest() during this alarm may have set one, and it must stand.
    if (next !== undefined) await this.ctx.storage.setAlarm(next);
  }

  private async retryLater(c: WorkerEdgeConfig, r: Extract<GatewayResult, { ok: false }>): Promise<void> {
    const attempts = (this.store.getMetaNumber('attempts') ?? 0) + 1;
    this.store.setMeta('attempts', attempts);
    this.store.setMeta('last_error', r.error.slice(0, 300));
    // Equal jitter: never zero, and shards that failed together do not retry in lockstep.
    let delayMs = jitteredBackoffMs(attempts, RETRY_BASE_MS, RETRY_MAX_MS);
    if (r.retryAfterS !== undefined) delayMs = Math.min(RETRY_MAX_MS, Math.max(delayMs, r.retryAfterS * 1000));
    log({ event: 'gateway_post_failed', shard: this.store.getMeta('shard'), attempts, status: r.status ?? null, retry_in_ms: Math.round(delayMs), error: r.error.slice(0, 300) });
    await this.ctx.storage.setAlarm(Date.now() + Math.max(delayMs, c.edge.flushIntervalMs));
  }
}
