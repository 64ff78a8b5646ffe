import { decodeInput } from './input.ts';
import { classifyClickHouseError, PermanentClickHouseError } from '../clickhouse/error-class.ts';
import type { Logger } from '../log.ts';
import { writeRetryDelayMs } from '../../shared/backoff.ts';
import { checkpointMetadata, emissionToken, parseCheckpointMetadata, type CheckpointPointer } from './checkpoint.ts';
import { isEmptyEmission, type EncodedEmission } from './emission.ts';
import type { EpochPorts } from './epoch-ports.ts';
import { createMutex, type Mutex } from './mutex.ts';
import { createPartitionAggregator, type AggregatorSettings, type PartitionAggregator, type PartitionSnapshot } from './partition-aggregator.ts';
import { FatalAggregatorError, forgottenProgress, missingCheckpoint, unreadableMetadata } from './state-mismatch.ts';
import { errorMessage } from '../../shared/errors.ts';

export { FatalAggregatorError };

/** Observation points for metrics; every hook is optional and must not throw. */
export interface AggregatorHooks {
  messageDecoded?(partition: number, result: 'ok' | 'duplicate' | 'dead_lettered'): void;
  lateRows?(partition: number, count: number): void;
  emissionWritten?(partition: number, emission: EncodedEmission, writeMs: number): void;
  checkpointed?(partition: number, durationMs: number): void;
  writeFailed?(partition: number, stage: 'checkpoint' | 'emission' | 'offset_commit'): void;
  partitionState?(partition: number, state: { watermarkMs: number | undefined; openWindows: number }): void;
  /**
   * Positions in the input partition: `highWatermark` as last seen by the consumer, `committed`
   * the last offset whose commit was confirmed. Consumer lag is their difference, so it grows
   * while a partition is blocked on failing writes.
   */
  offsets?(partition: number, positions: { highWatermark?: string; committed?: string }): void;
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
  /** Commits that did not count: fenced, failed, or resolved without being visible in the group. */
  commitsRefused: number;
  abandons: number;
  /** Input records skipped over by the consumer (gone from the log before they were read). */
  inputRecordsMissing: number;
}

export interface EpochCommitterOptions {
  topic: string;
  groupId: string;
  settings: AggregatorSettings;
  emitIntervalMs: number;
  /** An epoch is cut early when this many cells are pending (default 50,000). */
  emitMaxRows?: number;
  /** Longest epoch while a partition is behind its high watermark (default 10 s). */
  catchUpEmitMaxMs?: number;
  /** First retry delay of a refused ClickHouse write or an unreachable coordinator (doubles up to 10 s). */
  retryDelayMs?: number;
  /**
   * An idle partition (no input, nothing to emit) still checkpoints this often (default 24 h):
   * checkpoints live 7 days (TTL), and the one a committed offset names must still exist at the
   * next restore.
   */
  checkpointRefreshMs?: number;
  logger: Logger;
  hooks?: AggregatorHooks;
}

/** One fetched batch of one input partition. */
export interface InputBatch {
  partition: number;
  messages: ReadonlyArray<{ offset: string; value: Uint8Array | null }>;
  highWatermark: string;
  /** Still ours to process: false once the consumer stops, the group rebalanced or a seek is pending. */
  active(): boolean;
  /** The consumer may fetch past `offset` (nothing is committed by it). */
  resolveOffset(offset: string): void;
  heartbeat(): Promise<void>;
}

export interface PartitionView {
  partition: number;
  watermarkMs: number | undefined;
  committedOffset: string | undefined;
  epoch: number;
  openWindows: number;
}

/**
 * The exactly-once epoch protocol of ADR 0003 for the partitions one consumer owns, free of any
 * broker or database client: the consumer loop turns a group join, each fetched batch and a
 * timer into calls on it, and it talks to Kafka and ClickHouse only through {@link EpochPorts}.
 */
export interface EpochCommitter {
  /** A group join: every partition restarts from its committed checkpoint; `partitions` are restored now. */
  assigned(partitions: readonly number[]): void;
  /**
   * The consumer lost its group membership without a rebalance telling us (it crashed): every
   * partition is given up as in a rebalance. Nothing of the runtimes held so far commits any
   * more (an epoch being written is abandoned before its commit, or its emission is left to the
   * next restore), and the next `assigned` restores from the committed checkpoints.
   */
  revoked(reason: string): void;
  ingest(batch: InputBatch): Promise<void>;
  /** Cuts the epoch of every partition whose epoch is due (windows close without new input). */
  tick(): void;
  /** Emits and commits every owned partition now and waits for the writes (tests and shutdown). */
  flushAll(): Promise<void>;
  /** Stops on a fatal error found outside (e.g. the consumer crashed for good). */
  fail(err: Error): void;
  /** Ends: nothing is committed any more. */
  close(): void;
  /** Settles with the error once the committer stopped because of a fatal error; never otherwise. */
  readonly fatal: Promise<Error>;
  failure(): Error | undefined;
  stats(): AggregatorStats;
  partitions(): PartitionView[];
  owned(): number[];
}

interface PartitionRuntime {
  partition: number;
  /** Group generation this runtime belongs to; a runtime of an older generation never commits. */
  generation: number;
  aggregator: PartitionAggregator;
  /** Epoch of the last confirmed checkpoint (0: none yet). */
  epoch: number;
  /** First offset whose effect is not yet in a confirmed checkpoint; where an abandoned runtime resumes. */
  committedOffset: string | undefined;
  /** First offset not yet ingested. */
  nextOffset: string | undefined;
  lastEmitMs: number;
  /** When the last checkpoint of this runtime was confirmed (-Infinity after a restore: its age is unknown). */
  lastCheckpointMs: number;
  /** Input was already waiting in Kafka after the last batch: epochs may grow (catch-up). */
  behind: boolean;
  stale: boolean;
}

const COMMIT_TIMEOUT_HINT = 'the partition resumes from its last confirmed checkpoint';

/**
 * Per partition and epoch (ADR 0003):
 *   1. cut: `emit()` the deltas and snapshot the state after them;
 *   2. save {state, inserts, next offset} as checkpoint (epoch, random id);
 *   3. commit the next offset with metadata naming the checkpoint, and go on only once the
 *      commit is confirmed (`committed`); otherwise abandon the runtime: it resumes from its last
 *      confirmed checkpoint, and the unconfirmed checkpoint's inserts are never written by it;
 *   4. write the inserts with the checkpoint's deduplication token, retried until they land.
 * A restore reads the committed pointer, loads its checkpoint and re-writes its inserts under that
 * checkpoint's token. Epochs are pipelined: one epoch per partition is written while the next is
 * ingested; a cut, a restore and a final flush wait for the write in flight.
 */
export function createEpochCommitter(ports: EpochPorts, o: EpochCommitterOptions): EpochCommitter {
  const { clock } = ports;
  const retryDelayMs = o.retryDelayMs ?? 500;
  const emitMaxRows = o.emitMaxRows ?? 50_000;
  const catchUpEmitMaxMs = Math.max(o.catchUpEmitMaxMs ?? 10_000, o.emitIntervalMs);
  const checkpointRefreshMs = o.checkpointRefreshMs ?? 86_400_000;
  const hooks = o.hooks ?? {};
  const scope = (partition: number) => ({ groupId: o.groupId, topic: o.topic, partition });
  const epochDue = (rt: PartitionRuntime): boolean => clock.now() - rt.lastEmitMs >= (rt.behind ? catchUpEmitMaxMs : o.emitIntervalMs);
  const stats: AggregatorStats = { messages: 0, duplicates: 0, deadLettered: 0, lateRows: 0, emissions: 0, rowsWritten: 0, writeFailures: 0, restores: 0, commitsRefused: 0, abandons: 0, inputRecordsMissing: 0 };
  const runtimes = new Map<number, PartitionRuntime>();
  // Locks outlive runtimes: a new runtime of a partition waits for the old one's work to finish.
  const locks = new Map<number, Mutex>();
  const lockOf = (p: number): Mutex => {
    let l = locks.get(p);
    if (!l) locks.set(p, (l = createMutex()));
    return l;
  };
  // The write of a partition's last cut epoch, running while the partition ingests its next one.
  // Like locks it outlives runtimes: a flush or a restore of the partition waits for it first, so
  // epochs commit in order and a restore never reads a pointer an older write is about to move.
  const inflight = new Map<number, Promise<void>>();
  const settled = async (p: number): Promise<void> => {
    await inflight.get(p);
  };
  let generation = 0;
  let assignedPartitions: number[] = [];
  let running = true;
  let failed: Error | undefined;
  let settleFatal: (err: Error) => void = () => undefined;
  const fatal = new Promise<Error>((resolve) => {
    settleFatal = resolve;
  });

  function fail(err: Error): void {
    if (failed) return;
    failed = err;
    running = false;
    for (const rt of runtimes.values()) rt.stale = true;
    runtimes.clear();
    o.logger.error({ event: 'aggregator_fatal', topic: o.topic, group: o.groupId, err: err.message });
    settleFatal(err);
  }

  /** Routes an error out of a background task: fatal ones stop the committer, others are logged. */
  function onTaskError(event: string, partition: number, err: unknown): void {
    if (err instanceof FatalAggregatorError || err instanceof PermanentClickHouseError) return fail(err);
    if (running) o.logger.warn({ event, partition, err: errorMessage(err) });
  }

  /** Retries a ClickHouse call while it fails transiently; a permanent failure stops the aggregator. */
  async function retryClickHouse<T>(stage: 'checkpoint' | 'emission', what: string, partition: number, fn: () => Promise<T>, heartbeat?: () => Promise<void>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (!running) throw new Error(`aggregator stopped before ${what} was written`);
      try {
        return await fn();
      } catch (err) {
        stats.writeFailures++;
        hooks.writeFailed?.(partition, stage);
        const c = classifyClickHouseError(err);
        if (c.kind === 'permanent') throw new PermanentClickHouseError(what, c);
        o.logger.warn({ event: 'clickhouse_write_failed', stage, partition, attempt, code: c.code, err: c.message });
        // Backpressure: the partition pulls nothing until the same write (same token) lands.
        await clock.sleep(writeRetryDelayMs(attempt, retryDelayMs));
        if (heartbeat) await heartbeat().catch(() => undefined);
      }
    }
  }

  /** Reads from the group coordinator, retried while the broker is unreachable. */
  async function retryKafka<T>(what: string, partition: number, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (!running) throw new Error(`aggregator stopped while reading ${what}`);
      try {
        return await fn();
      } catch (err) {
        o.logger.warn({ event: 'kafka_read_failed', what, partition, attempt, err: errorMessage(err) });
        await clock.sleep(writeRetryDelayMs(attempt, retryDelayMs));
      }
    }
  }

  async function writeEmission(partition: number, emission: EncodedEmission, pointer: CheckpointPointer, heartbeat?: () => Promise<void>): Promise<void> {
    if (emission.parts.length === 0) return;
    const started = clock.now();
    const token = emissionToken(scope(partition), pointer);
    const what = `the emission of checkpoint ${pointer.checkpointId} (${o.topic}[${partition}], epoch ${pointer.epoch}) into ${emission.parts.map((p) => p.table).join(', ')}`;
    const { rows } = await retryClickHouse('emission', what, partition, () => ports.writer.writeEncoded(emission, token), heartbeat);
    stats.rowsWritten += rows;
    stats.emissions++;
    hooks.emissionWritten?.(partition, emission, clock.now() - started);
  }

  /** Builds the runtime of a partition from its committed checkpoint (under the partition lock). */
  async function restore(partition: number): Promise<PartitionRuntime> {
    await settled(partition);
    const position = await retryKafka('committed offset', partition, () => ports.offsets.read(partition));
    const rt: PartitionRuntime = {
      partition,
      generation,
      aggregator: createPartitionAggregator(o.settings),
      epoch: 0,
      committedOffset: position.offset,
      nextOffset: undefined,
      lastEmitMs: clock.now(),
      lastCheckpointMs: Number.NEGATIVE_INFINITY,
      behind: false,
      stale: false,
    };
    const parsed = parseCheckpointMetadata(position.metadata);
    if (parsed.kind === 'unsupported') {
      throw unreadableMetadata(scope(partition), parsed.metadata);
    }
    if (parsed.kind === 'pointer') {
      const { pointer } = parsed;
      const checkpoint = await retryClickHouse('checkpoint', `a read of checkpoint ${pointer.checkpointId}`, partition, () =>
        ports.checkpoints.load({ ...scope(partition), epoch: pointer.epoch, checkpointId: pointer.checkpointId }),
      );
      if (!checkpoint) {
        // Resuming without the state the committed offset depends on would lose (or double count) input.
        throw missingCheckpoint(scope(partition), position.offset, pointer);
      }
      rt.aggregator = createPartitionAggregator(o.settings, checkpoint.state, clock.now());
      rt.epoch = pointer.epoch;
      stats.restores++;
      // The emission of the last epoch may or may not have landed: re-write it under its own token.
      await writeEmission(partition, checkpoint.emission, pointer);
      o.logger.info({ event: 'partition_restored', partition, epoch: pointer.epoch, checkpoint_id: pointer.checkpointId, metadata_version: pointer.version, next_offset: rt.committedOffset });
    } else if (position.offset === undefined) {
      await checkNoForgottenProgress(partition);
    }
    rt.nextOffset = rt.committedOffset;
    if (rt.committedOffset !== undefined) hooks.offsets?.(partition, { committed: rt.committedOffset });
    return rt;
  }

  /**
   * The broker has no committed offset for the partition, so the consumer would read it from the
   * beginning. That double counts when this ClickHouse already holds emissions of records still
   * in the log. An emission is written only after its epoch's commit was confirmed, and epoch
   * N + 1 is cut only after epoch N was confirmed: a checkpoint of epoch ≥ 2 proves a confirmed
   * commit. (A partition with epoch-1 checkpoints only may just have an unconfirmed first commit,
   * which is not a mismatch; ADR 0003 "State mismatch" states what this cannot tell apart.)
   */
  async function checkNoForgottenProgress(partition: number): Promise<void> {
    const summary = await retryClickHouse('checkpoint', 'a read of aggregator_checkpoints', partition, () => ports.checkpoints.summary(scope(partition)));
    if (!summary) return;
    if (summary.maxEpoch < 2) {
      o.logger.warn({ event: 'checkpoints_without_committed_offset', partition, max_epoch: summary.maxEpoch, next_offset: summary.maxNextOffset });
      return;
    }
    const logStart = await retryKafka('log start offset', partition, () => ports.offsets.logStart(partition));
    if (BigInt(logStart) >= BigInt(summary.maxNextOffset)) {
      // Everything those checkpoints counted is gone from the log: reading from its start counts only newer records.
      o.logger.warn({ event: 'checkpoints_without_committed_offset', partition, max_epoch: summary.maxEpoch, next_offset: summary.maxNextOffset, log_start: logStart });
      return;
    }
    throw forgottenProgress(scope(partition), summary, logStart);
  }

  async function runtimeFor(partition: number): Promise<PartitionRuntime> {
    const existing = runtimes.get(partition);
    if (existing && !existing.stale && existing.generation === generation) return existing;
    const rt = await restore(partition);
    if (!running) throw new Error('aggregator stopped during a restore');
    runtimes.set(partition, rt);
    return rt;
  }

  /** Forgets the runtime's progress past its last confirmed checkpoint; the next batch restores. */
  function abandon(rt: PartitionRuntime, reason: string): void {
    rt.stale = true;
    stats.abandons++;
    if (runtimes.get(rt.partition) === rt) runtimes.delete(rt.partition);
    o.logger.warn({ event: 'partition_abandoned', partition: rt.partition, reason, resume_offset: rt.committedOffset, epoch: rt.epoch });
    if (rt.committedOffset !== undefined && rt.generation === generation && running) {
      try {
        // Fetching continues from the last confirmed checkpoint; the next batch restores from it.
        ports.fetch.seek(rt.partition, rt.committedOffset);
      } catch (err) {
        o.logger.warn({ event: 'seek_failed', partition: rt.partition, err: errorMessage(err) });
      }
    }
  }

  /**
   * Cuts the partition's epoch and starts writing it; returns once the previous epoch's write has
   * finished and this one has started. At most one epoch per partition is being written while the
   * next accumulates: memory stays within twice `emitMaxRows` cells per partition.
   */
  async function flush(rt: PartitionRuntime, heartbeat?: () => Promise<void>): Promise<void> {
    await settled(rt.partition);
    if (rt.stale || rt.generation !== generation || !running) return;
    const nowMs = clock.now();
    const emission = rt.aggregator.emit(nowMs);
    rt.lastEmitMs = nowMs;
    hooks.partitionState?.(rt.partition, { watermarkMs: emission.watermarkMs, openWindows: rt.aggregator.openWindows() });
    const offsetMoved = rt.nextOffset !== rt.committedOffset;
    const refreshDue = nowMs - rt.lastCheckpointMs >= checkpointRefreshMs;
    if ((isEmptyEmission(emission) && !offsetMoved && !refreshDue) || rt.nextOffset === undefined) return;
    // Taken now: ingestion continues into the aggregator while this epoch is written.
    const state = rt.aggregator.snapshot();
    const encoded = ports.writer.encode(emission, rt.partition, nowMs);
    const write = commitEpoch(rt, encoded, state, rt.nextOffset, heartbeat).catch((err: unknown) => onTaskError('epoch_write_abandoned', rt.partition, err));
    inflight.set(rt.partition, write);
  }

  /** The exactly-once steps of one epoch, in order (ADR 0003). */
  async function commitEpoch(rt: PartitionRuntime, emission: EncodedEmission, state: PartitionSnapshot, nextOffset: string, heartbeat?: () => Promise<void>): Promise<void> {
    const started = clock.now();
    const pointer: CheckpointPointer = { version: 2, epoch: rt.epoch + 1, checkpointId: ports.newCheckpointId() };
    await retryClickHouse(
      'checkpoint',
      `checkpoint ${pointer.checkpointId} of ${o.topic}[${rt.partition}] into aggregator_checkpoints`,
      rt.partition,
      () => ports.checkpoints.save({ ...scope(rt.partition), epoch: pointer.epoch, checkpointId: pointer.checkpointId, nextOffset, state, emission }),
      heartbeat,
    );
    if (rt.stale || rt.generation !== generation || !running) return abandon(rt, 'rebalanced_before_commit');
    const answer = await ports.offsets.commit(rt.partition, nextOffset, checkpointMetadata(pointer.epoch, pointer.checkpointId));
    if (answer.kind !== 'committed') {
      stats.commitsRefused++;
      hooks.writeFailed?.(rt.partition, 'offset_commit');
      o.logger.warn({
        event: answer.kind === 'fenced' ? 'offset_commit_fenced' : 'offset_commit_unconfirmed',
        partition: rt.partition,
        epoch: pointer.epoch,
        checkpoint_id: pointer.checkpointId,
        offset: nextOffset,
        reason: answer.reason,
        then: COMMIT_TIMEOUT_HINT,
      });
      // This epoch did not happen: its inserts are never written under a pointer nobody names.
      return abandon(rt, `offset_commit_${answer.kind}`);
    }
    if (rt.generation !== generation) {
      // Confirmed, but the group rebalanced meanwhile and the partition may have a new owner that
      // restored the previous pointer. Whoever restores this pointer re-writes its inserts; writing
      // them here as well could count them next to the new owner's epochs.
      return abandon(rt, 'rebalanced_during_commit');
    }
    rt.epoch = pointer.epoch;
    rt.committedOffset = nextOffset;
    rt.lastCheckpointMs = clock.now();
    hooks.checkpointed?.(rt.partition, clock.now() - started);
    hooks.offsets?.(rt.partition, { committed: nextOffset });
    await writeEmission(rt.partition, emission, pointer, heartbeat);
  }

  async function ingest(batch: InputBatch): Promise<void> {
    const p = batch.partition;
    await lockOf(p)
      .run(async () => {
        if (!running) return;
        const rt = await runtimeFor(p);
        const first = batch.messages[0]?.offset;
        if (rt.committedOffset === undefined) rt.committedOffset = first;
        if (rt.nextOffset === undefined) rt.nextOffset = rt.committedOffset;
        hooks.offsets?.(p, { highWatermark: batch.highWatermark, ...(rt.committedOffset !== undefined ? { committed: rt.committedOffset } : {}) });
        for (const message of batch.messages) {
          if (!batch.active() || rt.stale || !running) break;
          // After a restore the fetch may start before the checkpoint: those effects are in the state.
          if (rt.nextOffset !== undefined && BigInt(message.offset) < BigInt(rt.nextOffset)) continue;
          if (rt.nextOffset !== undefined && BigInt(message.offset) > BigInt(rt.nextOffset)) {
            const logStart = await retryKafka('log start offset', p, () => ports.offsets.logStart(p));
            if (BigInt(logStart) <= BigInt(rt.nextOffset)) {
              // The records between are still in the log: the fetch position ran ahead of this
              // runtime's state (a seek back after an abandoned epoch failed while the consumer
              // restarted, or kafkajs resumed from a position of its own). Taking this batch would
              // skip them; go back for them instead and take nothing of it.
              o.logger.warn({ event: 'fetch_position_ahead', partition: p, next_offset: rt.nextOffset, fetched_offset: message.offset });
              try {
                ports.fetch.seek(p, rt.nextOffset);
              } catch (err) {
                // The next batch finds the same gap and tries again.
                o.logger.warn({ event: 'seek_failed', partition: p, err: errorMessage(err) });
              }
              break;
            }
            // Records between were never read: deleted by retention before this group got to them
            // (the consumer then restarts at the log start). They are lost; say so loudly.
            stats.inputRecordsMissing += Number(BigInt(message.offset) - BigInt(rt.nextOffset));
            o.logger.error({ event: 'input_records_missing', partition: p, from_offset: rt.nextOffset, to_offset: message.offset, count: (BigInt(message.offset) - BigInt(rt.nextOffset)).toString() });
          }
          stats.messages++;
          const value = message.value ?? new Uint8Array(0);
          const decoded = decodeInput(value);
          if (!decoded.ok) {
            // The poison message is durable in the dead-letter topic before its offset can commit.
            await ports.deadLetters.send({ partition: p, offset: message.offset, value, code: decoded.error.code, message: decoded.error.message });
            stats.deadLettered++;
            hooks.messageDecoded?.(p, 'dead_lettered');
            o.logger.warn({ event: 'partial_dead_lettered', partition: p, offset: message.offset, code: decoded.error.code, reason: decoded.error.message });
          } else {
            const result = rt.aggregator.ingest(decoded.value, clock.now());
            if (result.kind === 'duplicate') {
              stats.duplicates++;
              hooks.messageDecoded?.(p, 'duplicate');
            } else {
              hooks.messageDecoded?.(p, 'ok');
              if (result.late > 0) {
                stats.lateRows += result.late;
                hooks.lateRows?.(p, result.late);
                o.logger.info({ event: 'partial_late', partition: p, source_id: decoded.value.sourceId, sequence: decoded.value.sequence, rows: result.late });
              }
            }
          }
          rt.nextOffset = (BigInt(message.offset) + 1n).toString();
          batch.resolveOffset(message.offset);
          if (rt.aggregator.pendingCells() >= emitMaxRows) await flush(rt, batch.heartbeat);
        }
        hooks.partitionState?.(p, { watermarkMs: rt.aggregator.watermark(clock.now()), openWindows: rt.aggregator.openWindows() });
        rt.behind = rt.nextOffset !== undefined && BigInt(batch.highWatermark) > BigInt(rt.nextOffset);
        if (epochDue(rt)) await flush(rt, batch.heartbeat);
        await batch.heartbeat();
      })
      .catch((err: unknown) => {
        if (err instanceof FatalAggregatorError || err instanceof PermanentClickHouseError) return fail(err);
        throw err;
      });
  }

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
    assigned(partitions) {
      if (!running) return;
      generation++;
      // Every runtime restarts from its committed checkpoint: the consumer resumes fetching from the
      // committed offsets after a rebalance, so in-memory progress past them must be forgotten.
      for (const rt of runtimes.values()) rt.stale = true;
      runtimes.clear();
      assignedPartitions = [...partitions];
      o.logger.info({ event: 'partitions_assigned', generation, partitions: assignedPartitions });
      // Restore eagerly: a partition with no new input still has windows to close and a pending
      // emission to re-write, and must not wait for its next message to do so.
      const joined = generation;
      for (const partition of partitions) {
        lockOf(partition)
          .run(async () => {
            if (generation === joined && running) await runtimeFor(partition);
          })
          .catch((err: unknown) => onTaskError('partition_restore_failed', partition, err));
      }
    },
    revoked(reason) {
      if (!running) return;
      generation++;
      for (const rt of runtimes.values()) rt.stale = true;
      runtimes.clear();
      const held = assignedPartitions;
      assignedPartitions = [];
      o.logger.info({ event: 'partitions_revoked', generation, partitions: held, reason });
    },
    ingest,
    tick() {
      if (!running) return;
      for (const rt of runtimes.values()) {
        const lock = lockOf(rt.partition);
        if (lock.locked || !epochDue(rt)) continue;
        lock.run(() => flush(rt)).catch((err: unknown) => onTaskError('timed_emission_failed', rt.partition, err));
      }
    },
    flushAll,
    fail,
    close() {
      running = false;
    },
    fatal,
    failure: () => failed,
    stats: () => ({ ...stats }),
    partitions: () =>
      [...runtimes.values()].map((rt) => ({
        partition: rt.partition,
        watermarkMs: rt.aggregator.watermark(clock.now()),
        committedOffset: rt.committedOffset,
        epoch: rt.epoch,
        openWindows: rt.aggregator.openWindows(),
      })),
    owned: () => [...assignedPartitions],
  };
}

