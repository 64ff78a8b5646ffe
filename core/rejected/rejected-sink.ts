import type { ClickHouseClient } from '@clickhouse/client';
import type { Consumer, Kafka } from 'kafkajs';
import type { Registry } from 'prom-client';
import type { ClickHouse } from '../clickhouse/client.ts';
import { toClickHouseTime } from '../clickhouse/datetime.ts';
import type { CoreConfig } from '../config/core-config.ts';
import type { Logger } from '../log.ts';
import { classifyClickHouseError, PermanentClickHouseError } from '../clickhouse/error-class.ts';
import { createConsumerRestarter } from '../aggregator/consumer-restart.ts';
import { createRejectedMetrics } from '../metrics.ts';
import { writeRetryDelayMs } from '../../shared/backoff.ts';
import { sleep } from '../../shared/time.ts';

export interface RejectedSinkOptions {
  kafka: Kafka;
  client: ClickHouseClient;
  /** The `rejected` topic the edges and the gateway write (docs/CONTRACTS.md). */
  topic: string;
  groupId: string;
  logger: Logger;
  /** Called after each batch is durable in ClickHouse, with the rows per site. */
  recorded?(site: string, count: number): void;
  /** First retry delay while ClickHouse refuses the insert (doubles up to 10 s). Default 500 ms. */
  retryDelayMs?: number;
  /** Kafka session timeout of the sink's consumer: how long a crashed sink holds its partitions. Default 30 s. */
  sessionTimeoutMs?: number;
}

export interface RunningRejectedSink {
  /** Records written so far by this process. */
  written(): number;
  /** `joining` until the consumer first joined its group; `degraded` while a crashed consumer is restarted; `failed` once `fatal` has settled. */
  health(): { status: 'joining' | 'running' | 'degraded' | 'failed'; error?: string };
  /**
   * Settles (with the error) only when the sink stopped because ClickHouse refused its insert
   * permanently (missing table, access denied, ...) or its consumer crashed on an error no restart
   * can fix (authorization, configuration); never otherwise — a consumer crashed by a broker
   * outage is restarted in process. Nothing is committed after.
   */
  readonly fatal: Promise<Error>;
  stop(): Promise<void>;
}

const COLUMNS = ['site', 'received_at', 'batch_index', 'message_id', 'errors', 'event', 'kafka_partition', 'kafka_offset', 'recorded_at'];

/**
 * Copies the `rejected` topic into the `rejected_events` table, so refused events can be
 * inspected and counted with SQL next to the aggregates (docs/QUERIES.md "Rejected events").
 * At least once into a ReplacingMergeTree keyed by the Kafka coordinates: the offsets are
 * committed after the insert, and a batch inserted again after a crash collapses to one row per
 * record (identical retries are dropped at once by the insert deduplication token). A record
 * that is not what the edges write is kept too, with an error saying so: nothing is dropped.
 */
export async function startRejectedSink(o: RejectedSinkOptions): Promise<RunningRejectedSink> {
  const retryDelayMs = o.retryDelayMs ?? 500;
  let written = 0;
  let running = true;
  let joined = false;
  let failed: Error | undefined;
  let settleFatal: (err: Error) => void = () => undefined;
  const fatal = new Promise<Error>((resolve) => {
    settleFatal = resolve;
  });
  // Like the aggregator's: kafkajs never restarts a crashed consumer itself, the restarter does (ADR 0011 addendum).
  const sessionTimeout = o.sessionTimeoutMs ?? 30_000;
  const consumer: Consumer = o.kafka.consumer({
    groupId: o.groupId,
    readUncommitted: false,
    sessionTimeout,
    heartbeatInterval: Math.min(3_000, Math.floor(sessionTimeout / 3)),
    retry: { restartOnFailure: async () => false },
  });
  await consumer.connect();
  await consumer.subscribe({ topic: o.topic, fromBeginning: true });
  const restarter = createConsumerRestarter({
    restart: async () => {
      if (running) await consumer.run(runConfig);
    },
    fatal: (err) => fail(err),
    logger: o.logger,
    fields: { topic: o.topic, group: o.groupId },
  });
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joined = true;
    restarter.joined();
  });
  consumer.on(consumer.events.CRASH, (e) => {
    if (running) restarter.crashed(e.payload.error);
  });

  function fail(err: Error): void {
    if (failed) return;
    failed = err;
    running = false;
    o.logger.error({ event: 'rejected_sink_fatal', topic: o.topic, err: err.message });
    settleFatal(err);
    restarter.stop();
    void consumer.stop().catch(() => undefined);
  }

  const runConfig: Parameters<Consumer['run']>[0] = {
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      if (batch.messages.length === 0 || !running) return;
      const now = Date.now();
      const perSite = new Map<string, number>();
      const rows = batch.messages.map((m) => {
        const r = parseRejectedRecord(m.value, m.timestamp);
        perSite.set(r.site, (perSite.get(r.site) ?? 0) + 1);
        return [r.site, r.receivedAt, r.index, r.messageId, r.errors, r.event, batch.partition, m.offset, toClickHouseTime(now)];
      });
      const first = batch.messages[0]!.offset;
      const last = batch.lastOffset();
      for (let attempt = 1; ; attempt++) {
        try {
          await o.client.insert({
            table: 'rejected_events',
            columns: COLUMNS as [string, ...string[]],
            values: rows,
            format: 'JSONCompactEachRow',
            clickhouse_settings: { insert_deduplication_token: `rejected:${o.topic}:${batch.partition}:${first}-${last}` },
          });
          break;
        } catch (err) {
          const c = classifyClickHouseError(err);
          if (c.kind === 'permanent') {
            // Retrying cannot help: stop, so a supervisor and a human notice; nothing is committed.
            return fail(new PermanentClickHouseError(`the rejected events of ${o.topic}[${batch.partition}] offsets ${first}-${last} into rejected_events`, c));
          }
          o.logger.warn({ event: 'rejected_insert_failed', partition: batch.partition, attempt, code: c.code, err: c.message });
          if (!running || !isRunning() || isStale()) return; // not committed: the next owner reads the batch again
          await sleep(writeRetryDelayMs(attempt, retryDelayMs));
          await heartbeat().catch(() => undefined);
        }
      }
      if (!running) return;
      // Only now, with the rows durable, may the offsets move. A commit that silently does not
      // happen only means the batch is read and inserted again: same token, same keys, one row each.
      await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }]);
      resolveOffset(last);
      written += rows.length;
      for (const [site, count] of perSite) o.recorded?.(site, count);
      await heartbeat();
    },
  };
  // Not awaited: the group join may wait out a dead member's session timeout (see startAggregator).
  // A run that cannot start is a crash like any other: restarted unless no restart can fix it.
  consumer.run(runConfig).catch((err: unknown) => {
    if (running) restarter.crashed(err);
  });
  return {
    written: () => written,
    health: () => {
      if (failed) return { status: 'failed', error: failed.message };
      const down = restarter.down();
      if (down) return { status: 'degraded', error: `the Kafka consumer crashed ${down.crashes} time(s) since ${new Date(down.sinceMs).toISOString()} (last: ${down.error}); it is restarted with backoff` };
      return { status: joined ? 'running' : 'joining' };
    },
    fatal,
    async stop() {
      running = false;
      restarter.stop();
      await consumer.disconnect();
    },
  };
}

interface RejectedRow {
  site: string;
  receivedAt: string;
  index: number;
  messageId: string | null;
  errors: Array<{ path: string; message: string }>;
  event: string;
}

/** One record of the `rejected` topic as a row; anything else becomes a row that says what it was. */
function parseRejectedRecord(value: Buffer | null, kafkaTimestampMs: string): RejectedRow {
  const fallbackTime = toClickHouseTime(Number(kafkaTimestampMs) || Date.now());
  const text = value ? value.toString('utf8') : '';
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch {
    record = undefined;
  }
  if (!isRecord(record) || typeof record.site !== 'string') {
    return {
      site: '',
      receivedAt: fallbackTime,
      index: 0,
      messageId: null,
      errors: [{ path: '', message: 'not a rejected-event record (docs/CONTRACTS.md, topic rejected); the raw value is in event' }],
      event: text.slice(0, 4096),
    };
  }
  const receivedMs = typeof record.received_at === 'string' ? Date.parse(record.received_at) : NaN;
  const errors = Array.isArray(record.errors)
    ? record.errors.filter(isRecord).map((e) => ({ path: String(e.path ?? ''), message: String(e.message ?? '') }))
    : [];
  return {
    site: record.site,
    receivedAt: Number.isFinite(receivedMs) ? toClickHouseTime(receivedMs) : fallbackTime,
    index: typeof record.index === 'number' && Number.isInteger(record.index) && record.index >= 0 ? record.index : 0,
    messageId: typeof record.message_id === 'string' ? record.message_id : null,
    errors,
    event: JSON.stringify(record.event ?? null),
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The sink wired from configuration, as `tributary aggregator` and `tributary start` run it:
 * consumer group `<AGGREGATOR_GROUP>.rejected` on `REJECTED_TOPIC`, with the aggregator's session
 * timeout (after a crash both groups wait out the same AGGREGATOR_SESSION_TIMEOUT_MS).
 */
export function startConfiguredRejectedSink(kafka: Kafka, clickhouse: ClickHouse, config: CoreConfig, logger: Logger, registry?: Registry): Promise<RunningRejectedSink> {
  const metrics = registry ? createRejectedMetrics(registry) : undefined;
  return startRejectedSink({
    kafka,
    client: clickhouse.client,
    topic: config.topics.rejected,
    groupId: `${config.aggregator.groupId}.rejected`,
    sessionTimeoutMs: config.aggregator.sessionTimeoutMs,
    logger,
    ...(metrics ? { recorded: (site: string, count: number) => metrics.rejectedEvents(site, count) } : {}),
  });
}
