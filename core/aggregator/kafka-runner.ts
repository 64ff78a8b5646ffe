import { createHash } from 'node:crypto';
import type { Consumer, Kafka, Producer } from 'kafkajs';
import { decodeEnvelope, encodePartial } from '../algebra/index.ts';
import type { Logger } from '../log.ts';
import type { EmissionWriter } from '../clickhouse/emission-writer.ts';
import { isEmptyEmission, type Emission } from './emission.ts';
import { createMutex, type Mutex } from './mutex.ts';
import { createPartitionAggregator, type AggregatorSettings, type PartitionAggregator, type PartitionSnapshot } from './partition-aggregator.ts';

export interface AggregatorRunnerOptions {
  kafka: Kafka;
  topic: string;
  groupId: string;
  deadLetterTopic: string;
  writer: EmissionWriter;
  settings: AggregatorSettings;
  emitIntervalMs: number;
  logger: Logger;
  now?: () => number;
  /** Retry delay while ClickHouse refuses writes; the partition stops pulling meanwhile. */
  retryDelayMs?: number;
}

export interface AggregatorStats {
  messages: number;
  duplicates: number;
  deadLettered: number;
  lateRows: number;
  emissions: number;
  rowsWritten: number;
  writeFailures: number;
}

export interface RunningAggregator {
  stats(): AggregatorStats;
  /** Per partition: watermark and the next offset to be committed. */
  partitions(): Array<{ partition: number; watermarkMs: number | undefined; committedOffset: string | undefined; openWindows: number }>;
  /** Emits and commits every partition now (tests and shutdown). */
  flushAll(): Promise<void>;
  stop(): Promise<void>;
}

interface PartitionRuntime {
  partition: number;
  aggregator: PartitionAggregator;
  /** State as of `committedOffset`: what a fresh owner of this partition would resume from. */
  committed: PartitionSnapshot | undefined;
  committedOffset: string | undefined;
  nextOffset: string | undefined;
  lastEmitMs: number;
  lock: Mutex;
}

/**
 * Consumes edge envelopes, merges them per partition and writes delta emissions to ClickHouse.
 * Offsets are committed only after the emission that carries their effect is written, and the
 * write token is derived from the offset range and the content, so a replay after a crash does
 * not double count (ADR 0003 describes the protocol and its crash points).
 */
export async function startAggregator(o: AggregatorRunnerOptions): Promise<RunningAggregator> {
  const now = o.now ?? Date.now;
  const retryDelayMs = o.retryDelayMs ?? 1000;
  const stats: AggregatorStats = { messages: 0, duplicates: 0, deadLettered: 0, lateRows: 0, emissions: 0, rowsWritten: 0, writeFailures: 0 };
  const runtimes = new Map<number, PartitionRuntime>();
  let running = true;

  const consumer: Consumer = o.kafka.consumer({ groupId: o.groupId, sessionTimeout: 30_000, heartbeatInterval: 3_000, readUncommitted: false });
  const dlqProducer: Producer = o.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await Promise.all([consumer.connect(), dlqProducer.connect()]);
  await consumer.subscribe({ topic: o.topic, fromBeginning: true });

  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const assigned = new Set<number>(e.payload.memberAssignment[o.topic] ?? []);
    for (const p of runtimes.keys()) {
      // Uncommitted state of a revoked partition is dropped; its new owner replays from the committed offset.
      if (!assigned.has(p)) runtimes.delete(p);
    }
    o.logger.info({ event: 'partitions_assigned', partitions: [...assigned] });
  });

  function runtimeFor(partition: number): PartitionRuntime {
    let rt = runtimes.get(partition);
    if (!rt) {
      rt = {
        partition,
        aggregator: createPartitionAggregator(o.settings),
        committed: undefined,
        committedOffset: undefined,
        nextOffset: undefined,
        lastEmitMs: now(),
        lock: createMutex(),
      };
      runtimes.set(partition, rt);
    }
    return rt;
  }

  async function flush(rt: PartitionRuntime, heartbeat?: () => Promise<void>): Promise<void> {
    const emission = rt.aggregator.emit(now());
    rt.lastEmitMs = now();
    const offsetMoved = rt.nextOffset !== undefined && rt.nextOffset !== rt.committedOffset;
    if (isEmptyEmission(emission) && !offsetMoved) return;
    const token = `${o.groupId}:${o.topic}:${rt.partition}:${rt.committedOffset ?? 'start'}-${rt.nextOffset ?? 'none'}:${digest(emission)}`;
    for (let attempt = 1; ; attempt++) {
      try {
        const { rows } = await o.writer.write(emission, token, rt.partition);
        stats.rowsWritten += rows;
        break;
      } catch (err) {
        stats.writeFailures++;
        o.logger.warn({ event: 'clickhouse_write_failed', partition: rt.partition, attempt, err: errorMessage(err) });
        if (!running) throw err;
        // Backpressure: this partition pulls nothing until the same emission (same token) lands.
        await sleep(Math.min(retryDelayMs * attempt, 10_000));
        if (heartbeat) await heartbeat().catch(() => undefined);
      }
    }
    if (rt.nextOffset !== undefined && offsetMoved) {
      await consumer.commitOffsets([{ topic: o.topic, partition: rt.partition, offset: rt.nextOffset }]);
    }
    rt.committedOffset = rt.nextOffset;
    rt.committed = rt.aggregator.snapshot();
    stats.emissions++;
    o.logger.debug({ event: 'emission_written', partition: rt.partition, deltas: emission.deltas.length, statuses: emission.statuses.length, late: emission.late.length, watermark: emission.watermarkMs });
  }

  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: 4,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      const rt = runtimeFor(batch.partition);
      await rt.lock.run(async () => {
        if (rt.committedOffset === undefined) rt.committedOffset = batch.firstOffset() ?? undefined;
        for (const message of batch.messages) {
          if (!isRunning() || isStale()) break;
          stats.messages++;
          const value = message.value ?? new Uint8Array(0);
          const decoded = decodeEnvelope(value);
          if (!decoded.ok) {
            // The poison message is durable in the dead-letter topic before its offset can commit.
            await dlqProducer.send({
              topic: o.deadLetterTopic,
              acks: -1,
              messages: [{
                key: `${batch.topic}:${batch.partition}:${message.offset}`,
                value: Buffer.from(value),
                headers: {
                  reason: 'undecodable_envelope',
                  error_code: decoded.error.code,
                  error_message: decoded.error.message,
                  source_topic: batch.topic,
                  source_partition: String(batch.partition),
                  source_offset: message.offset,
                },
              }],
            });
            stats.deadLettered++;
            o.logger.warn({ event: 'partial_dead_lettered', partition: batch.partition, offset: message.offset, code: decoded.error.code, reason: decoded.error.message });
          } else {
            const result = rt.aggregator.ingest(decoded.value, now());
            if (result.kind === 'duplicate') stats.duplicates++;
            else stats.lateRows += result.late;
          }
          rt.nextOffset = (BigInt(message.offset) + 1n).toString();
          resolveOffset(message.offset);
        }
        if (now() - rt.lastEmitMs >= o.emitIntervalMs) await flush(rt, heartbeat);
        await heartbeat();
      });
    },
  });

  // Windows close and provisional rows refresh even when no message arrives.
  const timer = setInterval(() => {
    for (const rt of runtimes.values()) {
      if (rt.lock.locked || now() - rt.lastEmitMs < o.emitIntervalMs) continue;
      rt.lock.run(() => flush(rt)).catch((err: unknown) => o.logger.error({ event: 'timed_emission_failed', partition: rt.partition, err: errorMessage(err) }));
    }
  }, Math.max(50, Math.floor(o.emitIntervalMs / 2)));

  return {
    stats: () => ({ ...stats }),
    partitions: () =>
      [...runtimes.values()].map((rt) => ({
        partition: rt.partition,
        watermarkMs: rt.aggregator.watermark(now()),
        committedOffset: rt.committedOffset,
        openWindows: rt.aggregator.openWindows(),
      })),
    async flushAll() {
      await Promise.all([...runtimes.values()].map((rt) => rt.lock.run(() => flush(rt))));
    },
    async stop() {
      clearInterval(timer);
      await consumer.stop();
      await Promise.all([...runtimes.values()].map((rt) => rt.lock.run(() => flush(rt)).catch(() => undefined)));
      running = false;
      await Promise.all([consumer.disconnect(), dlqProducer.disconnect()]);
    },
  };
}

function digest(e: Emission): string {
  const h = createHash('sha256');
  for (const d of e.deltas) {
    h.update(`${d.windowStartMs}|${d.site}|${d.event}|${d.dimsKey}|`);
    h.update(encodePartial(d.partial));
  }
  h.update(JSON.stringify(e.statuses.map((s) => [s.windowStartMs, s.status, s.watermarkMs ?? null])));
  h.update(JSON.stringify(e.late));
  return h.digest('hex').slice(0, 24);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
