import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import type { EmissionWriter } from '../clickhouse/emission-writer.ts';
import type { Logger } from '../log.ts';
import { sleep } from '../../shared/time.ts';
import type { CheckpointStore } from './checkpoint.ts';
import { createConsumerRestarter } from './consumer-restart.ts';
import { createEpochCommitter, type AggregatorHooks, type AggregatorStats, type PartitionView } from './epoch-committer.ts';
import { createKafkaOffsetStore } from './kafka-offset-store.ts';
import type { AggregatorSettings } from './partition-aggregator.ts';
import { errorMessage } from '../../shared/errors.ts';

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
  /** How often the high watermarks of owned partitions are read for the lag metric (default 5 s), also while a partition is blocked. */
  highWatermarkIntervalMs?: number;
  /** How long `stop()` tries to write the last epochs before it gives up on them (default 10 s). */
  stopFlushTimeoutMs?: number;
  /** First delay before a crashed consumer is started again (default 1 s); doubles per crash, with jitter. */
  consumerRestartFirstMs?: number;
  /** Longest delay between consumer restarts (default 15 s). */
  consumerRestartMaxMs?: number;
}

export type { AggregatorHooks, AggregatorStats } from './epoch-committer.ts';

/**
 * What `health()` reports: joining until the first group join, degraded from a consumer crash
 * until it joined again (it is being restarted), failed after a fatal error.
 */
export interface AggregatorHealth {
  status: 'joining' | 'running' | 'degraded' | 'failed';
  /** Set when `status` is `failed` (what happened and what to run) or `degraded` (the crash). */
  error?: string;
}

export interface RunningAggregator {
  /** `joining` until the consumer first joined its group, then `running`; `degraded` while a crashed consumer is restarted; `failed` once `fatal` has settled. */
  health(): AggregatorHealth;
  /**
   * Settles (resolves with the error) only when the aggregator stopped because of a fatal error:
   * a state mismatch between Kafka and ClickHouse, a permanent ClickHouse error, or a consumer
   * crash no restart can fix (authorization, configuration). It never settles otherwise: a
   * consumer that crashed during a broker outage is restarted in process. After it settles the aggregator consumes and commits nothing more.
   */
  readonly fatal: Promise<Error>;
  stats(): AggregatorStats;
  partitions(): PartitionView[];
  /** Emits and checkpoints every owned partition now (tests and shutdown). */
  flushAll(): Promise<void>;
  stop(): Promise<void>;
}


/**
 * Consumes edge envelopes with kafkajs and hands them to the epoch protocol
 * (core/aggregator/epoch-committer.ts, ADR 0003): this file only turns the consumer's group
 * joins, fetched batches and a timer into calls on it, and gives it Kafka through ports — the
 * offset store (commits confirmed by reading them back), the fetch position, the dead-letter topic.
 * Resolves once the consumer is connected, subscribed and its run loop started, without waiting
 * for the group join (`health()` says `joining` until then).
 */
export async function startAggregator(o: AggregatorRunnerOptions): Promise<RunningAggregator> {
  const now = o.now ?? Date.now;
  const consumer: Consumer = o.kafka.consumer({
    groupId: o.groupId,
    sessionTimeout: o.sessionTimeoutMs ?? 30_000,
    rebalanceTimeout: Math.max(o.sessionTimeoutMs ?? 30_000, 10_000),
    heartbeatInterval: Math.min(3_000, Math.floor((o.sessionTimeoutMs ?? 30_000) / 3)),
    readUncommitted: false,
    maxBytesPerPartition: o.maxBytesPerPartition ?? 1_048_576,
    // kafkajs restarts a crashed consumer only when the error looks retriable to it, and a broker
    // outage can end in errors it does not (consumer-restart.ts). Every restart is ours instead:
    // one policy, one backoff, logged, and visible in health().
    retry: { restartOnFailure: async () => false },
  });
  const admin: Admin = o.kafka.admin();
  const dlqProducer: Producer = o.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await Promise.all([consumer.connect(), admin.connect(), dlqProducer.connect()]);
  await consumer.subscribe({ topic: o.topic, fromBeginning: true });

  // The single-attempt commit of the latest fetched batch (kafka-offset-store.ts says why).
  let directCommit: EachBatchPayload['commitOffsetsIfNecessary'] | undefined;
  const committer = createEpochCommitter(
    {
      offsets: createKafkaOffsetStore({ consumer, admin, groupId: o.groupId, topic: o.topic, directCommit: () => directCommit }),
      fetch: { seek: (partition, offset) => consumer.seek({ topic: o.topic, partition, offset }) },
      checkpoints: o.checkpoints,
      writer: o.writer,
      deadLetters: {
        async send(r) {
          await dlqProducer.send({
            topic: o.deadLetterTopic,
            acks: -1,
            messages: [{
              key: `${o.topic}:${r.partition}:${r.offset}`,
              value: Buffer.from(r.value),
              headers: {
                reason: 'undecodable_envelope',
                error_code: r.code,
                error_message: r.message,
                source_topic: o.topic,
                source_partition: String(r.partition),
                source_offset: r.offset,
              },
            }],
          });
        },
      },
      clock: { now, sleep },
      newCheckpointId: randomUUID,
    },
    {
      topic: o.topic,
      groupId: o.groupId,
      settings: o.settings,
      emitIntervalMs: o.emitIntervalMs,
      ...(o.emitMaxRows !== undefined ? { emitMaxRows: o.emitMaxRows } : {}),
      ...(o.catchUpEmitMaxMs !== undefined ? { catchUpEmitMaxMs: o.catchUpEmitMaxMs } : {}),
      ...(o.retryDelayMs !== undefined ? { retryDelayMs: o.retryDelayMs } : {}),
      logger: o.logger,
      ...(o.hooks ? { hooks: o.hooks } : {}),
    },
  );

  let joined = false;
  let stopped = false;
  const restarter = createConsumerRestarter({
    restart: async () => {
      if (stopped || committer.failure()) return;
      await consumer.run(runConfig);
    },
    fatal: (err) => committer.fail(err),
    // Partitions held before the crash are given up now: nothing commits under the old generation.
    crashed: () => committer.revoked('consumer_crashed'),
    logger: o.logger,
    fields: { topic: o.topic, group: o.groupId },
    ...(o.consumerRestartFirstMs !== undefined ? { firstDelayMs: o.consumerRestartFirstMs } : {}),
    ...(o.consumerRestartMaxMs !== undefined ? { maxDelayMs: o.consumerRestartMaxMs } : {}),
  });
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    joined = true;
    restarter.joined();
    committer.assigned(e.payload.memberAssignment[o.topic] ?? []);
  });
  consumer.on(consumer.events.CRASH, (e) => {
    // restartOnFailure above answers false: kafkajs never restarts; the restarter decides.
    if (!stopped) restarter.crashed(e.payload.error);
  });

  const runConfig: Parameters<Consumer['run']>[0] = {
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: 4,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale, commitOffsetsIfNecessary }) => {
      directCommit = commitOffsetsIfNecessary;
      await committer.ingest({
        partition: batch.partition,
        messages: batch.messages,
        highWatermark: batch.highWatermark,
        active: () => isRunning() && !isStale(),
        resolveOffset,
        heartbeat,
      });
    },
  };
  // Not awaited: `run` resolves after the first join and sync, which after a crash of the previous
  // member waits out its session timeout. Callers must not wait for that (health() says 'joining').
  // A run that cannot start is a crash like any other: restarted unless it cannot be fixed so.
  consumer.run(runConfig).catch((err: unknown) => {
    if (!stopped) restarter.crashed(err);
  });

  // Windows close and provisional rows refresh even when no message arrives.
  const timer = setInterval(() => committer.tick(), Math.max(50, Math.floor(o.emitIntervalMs / 2)));
  // High watermarks for the lag metric, also while a partition's batches are blocked on a write.
  const watermarkTimer = o.hooks?.offsets
    ? setInterval(() => {
        const owned = new Set(committer.owned());
        if (owned.size === 0) return;
        admin
          .fetchTopicOffsets(o.topic)
          .then((offsets) => {
            for (const p of offsets) if (owned.has(p.partition)) o.hooks?.offsets?.(p.partition, { highWatermark: p.high });
          })
          .catch(() => undefined); // the next tick asks again; lag keeps its last value meanwhile
      }, o.highWatermarkIntervalMs ?? 5_000)
    : undefined;

  // After a fatal error nothing more is consumed or committed: the consumer leaves the group.
  void committer.fatal.then(async () => {
    restarter.stop();
    clearInterval(timer);
    clearInterval(watermarkTimer);
    await consumer.stop().catch(() => undefined);
  });

  return {
    health: () => {
      const failure = committer.failure();
      if (failure) return { status: 'failed', error: failure.message };
      const down = restarter.down();
      if (down) return { status: 'degraded', error: `the Kafka consumer crashed ${down.crashes} time(s) since ${new Date(down.sinceMs).toISOString()} (last: ${down.error}); it is restarted with backoff, results are delayed meanwhile` };
      return { status: joined ? 'running' : 'joining' };
    },
    fatal: committer.fatal,
    stats: () => committer.stats(),
    partitions: () => committer.partitions(),
    flushAll: () => committer.flushAll(),
    async stop() {
      stopped = true;
      restarter.stop();
      clearInterval(timer);
      clearInterval(watermarkTimer);
      if (!committer.failure()) {
        // Bounded: with ClickHouse or Kafka down the final epoch would retry forever. Giving up is
        // safe (nothing unconfirmed is written; the next owner restores from the last commit).
        const flushed = committer.flushAll().then(
          () => true,
          (err: unknown) => {
            o.logger.warn({ event: 'final_flush_failed', err: errorMessage(err) });
            return true;
          },
        );
        let deadline: NodeJS.Timeout | undefined;
        const timedOut = new Promise<boolean>((resolve) => {
          deadline = setTimeout(() => resolve(false), o.stopFlushTimeoutMs ?? 10_000);
        });
        if (!(await Promise.race([flushed, timedOut]))) o.logger.warn({ event: 'final_flush_failed', err: `not finished within ${o.stopFlushTimeoutMs ?? 10_000} ms; the next owner restores from the last commit` });
        clearTimeout(deadline);
      }
      committer.close();
      await consumer.disconnect();
      await Promise.all([admin.disconnect(), dlqProducer.disconnect()]);
    },
  };
}

