import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, Kafka, Producer } from 'kafkajs';
import { decodeEnvelope } from '../algebra/index.ts';
import type { EmissionWriter } from '../clickhouse/emission-writer.ts';
import type { Logger } from '../log.ts';
import { sleep, writeRetryDelayMs } from '../retry.ts';
import { checkpointMetadata, parseCheckpointMetadata, type CheckpointStore } from './checkpoint.ts';
import { isEmptyEmission, type EncodedEmission } from './emission.ts';
import { createMutex, type Mutex } from './mutex.ts';
import { createPartitionAggregator, type AggregatorSettings, type PartitionAggregator, type PartitionSnapshot } from './partition-aggregator.ts';

export interface AggregatorRunnerOptions {
  kafka: Kafka;
  topic: string;
  groupId: string;
  deadLetterTopic: string;
  writer: EmissionWriter;
  checkpoints: CheckpointStore;
  settings: AggregatorSettings;
  emitIntervalMs: number;
  /** An epoch is cut early when this many cells are pending (default 50,000, ~27 MB): bounds memory and insert size. */
  emitMaxRows?: number;
  /**
   * Longest epoch while a partition is behind (default 10 s). With input already waiting in
   * Kafka the 1 s cadence would only write more, smaller deltas of the same cells: epochs grow
   * until `emitMaxRows` cells or this age instead, and go back to `emitIntervalMs` once caught up.
   */
  catchUpEmitMaxMs?: number;
  /** Kafka session timeout (default 30 s): a killed process holds its partitions this long. */
  sessionTimeoutMs?: number;
  /** Upper bound of one fetch per partition (default 1 MiB): smaller means smaller epochs. */
  maxBytesPerPartition?: number;
  logger: Logger;
  now?: () => number;
  /** First retry delay while ClickHouse refuses writes; the partition pulls nothing meanwhile. */
  retryDelayMs?: number;
  hooks?: AggregatorHooks;
}

/** Observation points for metrics; every hook is optional and must not throw. */
export interface AggregatorHooks {
  messageDecoded?(partition: number, result: 'ok' | 'duplicate' | 'dead_lettered'): void;
  lateRows?(partition: number, count: number): void;
  emissionWritten?(partition: number, emission: EncodedEmission, writeMs: number): void;
  checkpointed?(partition: number, durationMs: number): void;
  writeFailed?(partition: number, stage: 'checkpoint' | 'emission' | 'offset_commit'): void;
  partitionState?(partition: number, state: { watermarkMs: number | undefined; openWindows: number; highWatermark?: string; nextOffset?: string }): void;
}

export interface AggregatorStats {
  messages: number;
  duplicates: number;
  deadLettered: number;
  lateRows: number;
  emissions: number;
  rowsWritten: number;
  writeFailures: number;
  restores: number;
}

/** What `health()` reports: joining until the first group join, failed after a fatal error. */
export interface AggregatorHealth {
  status: 'joining' | 'running' | 'failed';
  /** Set when `status` is `failed`: what happened and what to run. */
  error?: string;
}

export interface RunningAggregator {
  /** `joining` until the consumer first joined its group, then `running`; `failed` once `fatal` has settled. */
  health(): AggregatorHealth;
  /**
   * Settles (resolves with the error) only when the aggregator stopped because of a fatal error:
   * a state mismatch between Kafka and ClickHouse, or a permanent ClickHouse error. It never
   * settles otherwise. After it settles the aggregator consumes and commits nothing more.
   */
  readonly fatal: Promise<Error>;
  stats(): AggregatorStats;
  partitions(): Array<{ partition: number; watermarkMs: number | undefined; committedOffset: string | undefined; epoch: number; openWindows: number }>;
  /** Emits and checkpoints every owned partition now (tests and shutdown). */
  flushAll(): Promise<void>;
  stop(): Promise<void>;
}

interface PartitionRuntime {
  partition: number;
  /** Group generation this runtime belongs to; a runtime of an older generation never commits. */
  generation: number;
  aggregator: PartitionAggregator;
  epoch: number;
  /** First offset whose effect is not yet in a committed checkpoint. */
  committedOffset: string | undefined;
  /** First offset not yet ingested. */
  nextOffset: string | undefined;
  lastEmitMs: number;
  /** Input was already waiting in Kafka after the last batch: epochs may grow (catch-up). */
  behind: boolean;
  stale: boolean;
}

/**
 * Consumes edge envelopes, merges them per input partition and writes delta emissions to
 * ClickHouse exactly once (ADR 0003):
 *   1. emit the epoch's deltas and snapshot the partition state;
 *   2. save {state, emission} as checkpoint (epoch, id) in ClickHouse;
 *   3. commit the input offset with metadata naming (epoch, id) — the single atomic step;
 *   4. write the emission with insert_deduplication_token derived from (group, topic, partition, epoch).
 * A new owner of the partition reads the committed metadata, restores that checkpoint and
 * re-writes its emission with the same token, which ClickHouse deduplicates if it had landed.
 */
export async function startAggregator(o: AggregatorRunnerOptions): Promise<RunningAggregator> {
  const now = o.now ?? Date.now;
  const retryDelayMs = o.retryDelayMs ?? 500;
  const emitMaxRows = o.emitMaxRows ?? 50_000;
  const catchUpEmitMaxMs = Math.max(o.catchUpEmitMaxMs ?? 10_000, o.emitIntervalMs);
  /** Is the partition's epoch old enough to be cut now? */
  const epochDue = (rt: PartitionRuntime): boolean => now() - rt.lastEmitMs >= (rt.behind ? catchUpEmitMaxMs : o.emitIntervalMs);
  const hooks = o.hooks ?? {};
  const stats: AggregatorStats = { messages: 0, duplicates: 0, deadLettered: 0, lateRows: 0, emissions: 0, rowsWritten: 0, writeFailures: 0, restores: 0 };
  const runtimes = new Map<number, PartitionRuntime>();
  // Locks outlive runtimes: a new runtime of a partition waits for the old one's flush to finish.
  const locks = new Map<number, Mutex>();
  const lockOf = (p: number): Mutex => {
    let l = locks.get(p);
    if (!l) locks.set(p, (l = createMutex()));
    return l;
  };
  // The write of a partition's last cut epoch (checkpoint, offset commit, emission), running while
  // the partition ingests its next one. Like locks it outlives runtimes: a flush or a restore of
  // the partition waits for it first, so epochs commit in order and a new runtime never restores
  // from a checkpoint an older write is about to supersede.
  const inflight = new Map<number, Promise<void>>();
  const settled = async (p: number): Promise<void> => {
    await inflight.get(p);
  };
  let generation = 0;
  let running = true;
  let health: AggregatorHealth = { status: 'joining' };
  let settleFatal: (err: Error) => void = () => undefined;
  const fatal = new Promise<Error>((resolve) => {
    settleFatal = resolve;
  });

  const consumer: Consumer = o.kafka.consumer({
    groupId: o.groupId,
    sessionTimeout: o.sessionTimeoutMs ?? 30_000,
    rebalanceTimeout: Math.max(o.sessionTimeoutMs ?? 30_000, 10_000),
    heartbeatInterval: Math.min(3_000, Math.floor((o.sessionTimeoutMs ?? 30_000) / 3)),
    readUncommitted: false,
    maxBytesPerPartition: o.maxBytesPerPartition ?? 1_048_576,
  });
  const admin: Admin = o.kafka.admin();
  const dlqProducer: Producer = o.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await Promise.all([consumer.connect(), admin.connect(), dlqProducer.connect()]);
  await consumer.subscribe({ topic: o.topic, fromBeginning: true });

  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    if (!running) return;
    if (health.status === 'joining') health = { status: 'running' };
    generation++;
    // Every runtime restarts from its committed checkpoint: kafkajs resumes fetching from the
    // committed offsets after a rebalance, so in-memory progress past them must be forgotten.
    for (const rt of runtimes.values()) rt.stale = true;
    runtimes.clear();
    const assigned = e.payload.memberAssignment[o.topic] ?? [];
    o.logger.info({ event: 'partitions_assigned', generation, partitions: assigned });
    // Restore eagerly: a partition with no new input still has windows to close and a pending
    // emission to re-write, and must not wait for its next message to do so.
    const joinedGeneration = generation;
    for (const partition of assigned) {
      lockOf(partition)
        .run(async () => {
          if (generation === joinedGeneration && running) await runtimeFor(partition);
        })
        .catch((err: unknown) => o.logger.error({ event: 'partition_restore_failed', partition, err: errorMessage(err) }));
    }
  });

  async function retryUntilDone<T>(what: 'checkpoint' | 'emission', partition: number, fn: () => Promise<T>, heartbeat?: () => Promise<void>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        stats.writeFailures++;
        hooks.writeFailed?.(partition, what);
        o.logger.warn({ event: 'clickhouse_write_failed', stage: what, partition, attempt, err: errorMessage(err) });
        if (!running) throw err;
        // Backpressure: the partition pulls nothing until the same write (same token) lands.
        await sleep(writeRetryDelayMs(attempt, retryDelayMs));
        if (heartbeat) await heartbeat().catch(() => undefined);
      }
    }
  }

  function tokenOf(partition: number, epoch: number): string {
    return `${o.groupId}:${o.topic}:${partition}:e${epoch}`;
  }

  async function writeEmission(partition: number, emission: EncodedEmission, epoch: number, heartbeat?: () => Promise<void>): Promise<void> {
    if (emission.parts.length === 0) return;
    const started = now();
    const { rows } = await retryUntilDone('emission', partition, () => o.writer.writeEncoded(emission, tokenOf(partition, epoch)), heartbeat);
    stats.rowsWritten += rows;
    stats.emissions++;
    hooks.emissionWritten?.(partition, emission, now() - started);
  }

  /** Builds the runtime of a partition from its committed checkpoint (under the partition lock). */
  async function restore(partition: number): Promise<PartitionRuntime> {
    await settled(partition);
    const [committed] = await admin.fetchOffsets({ groupId: o.groupId, topics: [o.topic] });
    const entry = committed?.partitions.find((p) => p.partition === partition);
    const rt: PartitionRuntime = {
      partition,
      generation,
      aggregator: createPartitionAggregator(o.settings),
      epoch: 0,
      committedOffset: entry && entry.offset !== '-1' ? entry.offset : undefined,
      nextOffset: undefined,
      lastEmitMs: now(),
      behind: false,
      stale: false,
    };
    const pointer = parseCheckpointMetadata(entry?.metadata);
    if (pointer) {
      const checkpoint = await retryUntilDone('checkpoint', partition, () => o.checkpoints.load({ groupId: o.groupId, topic: o.topic, partition, ...pointer }));
      if (!checkpoint) {
        // Resuming without the state the committed offsets depend on would lose or double count.
        throw new Error(
          `checkpoint ${pointer.checkpointId} (epoch ${pointer.epoch}) of ${o.topic}[${partition}] named by the committed offset is missing from aggregator_checkpoints; ` +
            'restore the table or reset the group offsets deliberately (see docs/OPERATIONS.md)',
        );
      }
      rt.aggregator = createPartitionAggregator(o.settings, checkpoint.state, now());
      rt.epoch = pointer.epoch;
      stats.restores++;
      // The emission of the last epoch may or may not have landed: re-write it with its token.
      await writeEmission(partition, checkpoint.emission, pointer.epoch);
      o.logger.info({ event: 'partition_restored', partition, epoch: pointer.epoch, next_offset: rt.committedOffset });
    }
    rt.nextOffset = rt.committedOffset;
    return rt;
  }

  async function runtimeFor(partition: number): Promise<PartitionRuntime> {
    const existing = runtimes.get(partition);
    if (existing && !existing.stale && existing.generation === generation) return existing;
    const rt = await restore(partition);
    runtimes.set(partition, rt);
    return rt;
  }

  function abandon(rt: PartitionRuntime, reason: string): void {
    rt.stale = true;
    if (runtimes.get(rt.partition) === rt) runtimes.delete(rt.partition);
    o.logger.warn({ event: 'partition_abandoned', partition: rt.partition, reason });
    if (rt.committedOffset !== undefined && rt.generation === generation) {
      try {
        // Fetching continues from the last checkpoint; the next batch restores from it.
        consumer.seek({ topic: o.topic, partition: rt.partition, offset: rt.committedOffset });
      } catch (err) {
        o.logger.warn({ event: 'seek_failed', partition: rt.partition, err: errorMessage(err) });
      }
    }
  }

  /**
   * Cuts the partition's epoch and starts writing it; returns once the previous epoch's write has
   * finished and this one has started, so ingestion overlaps with ClickHouse and Kafka round trips.
   * At most one epoch per partition is being written while the next accumulates: memory stays
   * within twice `emitMaxRows` cells per partition.
   */
  async function flush(rt: PartitionRuntime, heartbeat?: () => Promise<void>): Promise<void> {
    await settled(rt.partition);
    if (rt.stale || rt.generation !== generation) return;
    const emission = rt.aggregator.emit(now());
    rt.lastEmitMs = now();
    hooks.partitionState?.(rt.partition, { watermarkMs: emission.watermarkMs, openWindows: rt.aggregator.openWindows(), ...(rt.nextOffset ? { nextOffset: rt.nextOffset } : {}) });
    const offsetMoved = rt.nextOffset !== rt.committedOffset;
    if ((isEmptyEmission(emission) && !offsetMoved) || rt.nextOffset === undefined) return;
    // Taken now: ingestion continues into the aggregator while this epoch is written.
    const state = rt.aggregator.snapshot();
    const encoded = o.writer.encode(emission, rt.partition, now());
    const nextOffset = rt.nextOffset;
    const write = commitEpoch(rt, encoded, state, nextOffset, heartbeat).catch((err: unknown) => {
      // Only a stopping aggregator gives up on a write; the next owner restores from the last commit.
      o.logger.warn({ event: 'epoch_write_abandoned', partition: rt.partition, err: errorMessage(err) });
    });
    inflight.set(rt.partition, write);
  }

  /** The exactly-once steps of one epoch, in order (ADR 0003). */
  async function commitEpoch(rt: PartitionRuntime, emission: EncodedEmission, state: PartitionSnapshot, nextOffset: string, heartbeat?: () => Promise<void>): Promise<void> {
    const started = now();
    const epoch = rt.epoch + 1;
    const checkpointId = randomUUID();
    await retryUntilDone('checkpoint', rt.partition, () =>
      o.checkpoints.save({ groupId: o.groupId, topic: o.topic, partition: rt.partition, epoch, checkpointId, nextOffset, state, emission }),
    heartbeat);
    if (rt.stale || rt.generation !== generation) return abandon(rt, 'rebalanced_before_commit');
    try {
      await consumer.commitOffsets([{ topic: o.topic, partition: rt.partition, offset: nextOffset, metadata: checkpointMetadata(epoch, checkpointId) }]);
    } catch (err) {
      // Fenced by a rebalance or the coordinator moved: this epoch did not happen.
      hooks.writeFailed?.(rt.partition, 'offset_commit');
      return abandon(rt, `offset_commit_failed: ${errorMessage(err)}`);
    }
    rt.epoch = epoch;
    rt.committedOffset = nextOffset;
    hooks.checkpointed?.(rt.partition, now() - started);
    await writeEmission(rt.partition, emission, epoch, heartbeat);
  }

  // Not awaited: `run` resolves after the first join and sync, which after a crash of the previous
  // member waits out its session timeout. Callers must not wait for that (health() says 'joining').
  const runLoop = consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: 4,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      await lockOf(batch.partition).run(async () => {
        const rt = await runtimeFor(batch.partition);
        if (rt.committedOffset === undefined) rt.committedOffset = batch.firstOffset() ?? undefined;
        if (rt.nextOffset === undefined) rt.nextOffset = rt.committedOffset;
        for (const message of batch.messages) {
          if (!isRunning() || isStale() || rt.stale) break;
          // After a restore the fetch may start before the checkpoint: those effects are in the state.
          if (rt.nextOffset !== undefined && BigInt(message.offset) < BigInt(rt.nextOffset)) continue;
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
            hooks.messageDecoded?.(batch.partition, 'dead_lettered');
            o.logger.warn({ event: 'partial_dead_lettered', partition: batch.partition, offset: message.offset, code: decoded.error.code, reason: decoded.error.message });
          } else {
            const result = rt.aggregator.ingest(decoded.value, now());
            if (result.kind === 'duplicate') {
              stats.duplicates++;
              hooks.messageDecoded?.(batch.partition, 'duplicate');
            } else {
              hooks.messageDecoded?.(batch.partition, 'ok');
              if (result.late > 0) {
                stats.lateRows += result.late;
                hooks.lateRows?.(batch.partition, result.late);
                o.logger.info({ event: 'partial_late', partition: batch.partition, source_id: decoded.value.sourceId, sequence: decoded.value.sequence, rows: result.late });
              }
            }
          }
          rt.nextOffset = (BigInt(message.offset) + 1n).toString();
          resolveOffset(message.offset);
          if (rt.aggregator.pendingCells() >= emitMaxRows) await flush(rt, heartbeat);
        }
        hooks.partitionState?.(batch.partition, { watermarkMs: rt.aggregator.watermark(now()), openWindows: rt.aggregator.openWindows(), highWatermark: batch.highWatermark, ...(rt.nextOffset ? { nextOffset: rt.nextOffset } : {}) });
        rt.behind = rt.nextOffset !== undefined && BigInt(batch.highWatermark) > BigInt(rt.nextOffset);
        if (epochDue(rt)) await flush(rt, heartbeat);
        await heartbeat();
      });
    },
  });
  runLoop.catch((err: unknown) => void failFatally(new Error(`the Kafka consumer could not start: ${errorMessage(err)}`)));
  consumer.on(consumer.events.CRASH, (e) => {
    // kafkajs restarts itself after retriable crashes; any other crash leaves nothing consuming.
    if (!e.payload.restart) void failFatally(new Error(`the Kafka consumer crashed and will not restart: ${errorMessage(e.payload.error)}; restart the aggregator`));
  });

  /** Stops consuming and committing, then settles `fatal`; the first fatal error wins. */
  async function failFatally(err: Error): Promise<void> {
    if (health.status === 'failed') return;
    health = { status: 'failed', error: err.message };
    running = false;
    clearInterval(timer);
    for (const rt of runtimes.values()) rt.stale = true;
    runtimes.clear();
    o.logger.error({ event: 'aggregator_fatal', err: err.message });
    await consumer.stop().catch(() => undefined);
    settleFatal(err);
  }

  // Windows close and provisional rows refresh even when no message arrives.
  const timer = setInterval(() => {
    for (const rt of runtimes.values()) {
      const lock = lockOf(rt.partition);
      if (lock.locked || !epochDue(rt)) continue;
      lock.run(() => flush(rt)).catch((err: unknown) => o.logger.error({ event: 'timed_emission_failed', partition: rt.partition, err: errorMessage(err) }));
    }
  }, Math.max(50, Math.floor(o.emitIntervalMs / 2)));

  async function flushAll(): Promise<void> {
    await Promise.all(
      [...runtimes.values()].map((rt) =>
        lockOf(rt.partition).run(async () => {
          await flush(rt);
          await settled(rt.partition);
        }),
      ),
    );
  }

  return {
    health: () => ({ ...health }),
    fatal,
    stats: () => ({ ...stats }),
    partitions: () =>
      [...runtimes.values()].map((rt) => ({
        partition: rt.partition,
        watermarkMs: rt.aggregator.watermark(now()),
        committedOffset: rt.committedOffset,
        epoch: rt.epoch,
        openWindows: rt.aggregator.openWindows(),
      })),
    flushAll,
    async stop() {
      clearInterval(timer);
      if (running) await flushAll().catch((err: unknown) => o.logger.warn({ event: 'final_flush_failed', err: errorMessage(err) }));
      running = false;
      await consumer.disconnect();
      await Promise.all([admin.disconnect(), dlqProducer.disconnect()]);
    },
  };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
