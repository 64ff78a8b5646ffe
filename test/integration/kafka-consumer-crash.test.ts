import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAggregator, type RunningAggregator } from '../../core/aggregator/kafka-runner.ts';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { createClickHouseCheckpointStore } from '../../core/clickhouse/checkpoint-store.ts';
import { createEmissionWriter } from '../../core/clickhouse/emission-writer.ts';
import { createKafka } from '../../core/kafka/client.ts';
import { ensurePipelineTopics } from '../../core/kafka/topics.ts';
import { silentLogger } from '../../core/log.ts';
import { startRejectedSink, type RunningRejectedSink } from '../../core/rejected/rejected-sink.ts';
import { countEvents, openTestClickHouse, sendEdgeEnvelopes, testCoreConfig, testKafka } from './helpers/aggregator-harness.ts';
import { useOwnBroker } from './helpers/own-broker.ts';
import { uniqueName, waitFor } from './setup/kafka-test-env.ts';

// A broker outage long enough for the kafkajs consumer to crash for good (its retries run out
// while the broker is down, and its restarts crash again) must not end the aggregator: it
// restarts its consumer in process, reports `degraded` meanwhile, and counts what arrives after
// the broker is back — `fatal` never settles. The rejected-events sink of the same process does
// the same with its own consumer. The broker is this file's own (own port and data
// dir), so stopping it disturbs no other test. kafkajs' retries are lowered through
// createKafka's options so that the crash comes within a second or two of the outage.
const T = Date.UTC(2026, 0, 1, 10);
let ch: ClickHouse;
const broker = useOwnBroker('trib-consumer-crash');

beforeAll(async () => {
  ch = await openTestClickHouse('trib-consumer-crash');
}, 120_000);

afterAll(async () => {
  await ch?.close();
});

describe('a Kafka outage that crashes the consumer', () => {
  it('restarts the consumers in process and counts what arrives after the broker is back; fatal never settles', { timeout: 120_000 }, async () => {
    const brokers = broker.brokers;
    const config = testCoreConfig(brokers);
    await ensurePipelineTopics(createKafka(brokers, 'consumer-crash-setup', silentLogger()), config);
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    /** The aggregator's lines (the sink's carry its own topic). */
    const events = (name: string): Array<Record<string, unknown>> => lines.filter((l) => l.event === name && (l.topic === undefined || l.topic === config.topics.partials));
    const sinkEvents = (name: string): Array<Record<string, unknown>> => lines.filter((l) => l.event === name && l.topic === config.topics.rejected);
    const fewRetries = { retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 }, connectionTimeout: 500 };
    const writer = createEmissionWriter(ch);
    const aggregator: RunningAggregator = await startAggregator({
      kafka: createKafka(brokers, 'consumer-crash-agg', logger, fewRetries),
      topic: config.topics.partials,
      groupId: config.aggregator.groupId,
      deadLetterTopic: config.topics.deadLetter,
      writer,
      checkpoints: createClickHouseCheckpointStore(ch, writer),
      settings: config.aggregator,
      emitIntervalMs: 100,
      sessionTimeoutMs: 6000,
      retryDelayMs: 200,
      logger,
      consumerRestartFirstMs: 300,
      consumerRestartMaxMs: 2000,
    });
    const sink: RunningRejectedSink = await startRejectedSink({ kafka: createKafka(brokers, 'consumer-crash-rejected', logger, fewRetries), client: ch.client, topic: config.topics.rejected, groupId: uniqueName('rejected'), logger, retryDelayMs: 200, sessionTimeoutMs: 6000 });
    let fatal: Error | undefined;
    void aggregator.fatal.then((err) => (fatal = err));
    void sink.fatal.then((err) => (fatal = err));
    const statuses = new Set<string>();
    const sinkStatuses = new Set<string>();
    const watch = setInterval(() => {
      statuses.add(aggregator.health().status);
      sinkStatuses.add(sink.health().status);
    }, 20);
    const sendRejected = async (n: number): Promise<void> => {
      const producer = testKafka(brokers).producer();
      await producer.connect();
      await producer.send({ topic: config.topics.rejected, acks: -1, messages: Array.from({ length: n }, (_, i) => ({ value: JSON.stringify({ site: 'crash', receivedAt: new Date().toISOString(), index: i, messageId: `m-${n}-${i}`, errors: [{ path: '/event', message: 'required' }], event: '{}' }) })) });
      await producer.disconnect();
    };
    const rejectedRows = async (): Promise<number> => {
      const rs = await ch.client.query({ query: 'SELECT uniqExact(kafka_partition, kafka_offset) AS n FROM rejected_events', format: 'JSONEachRow' });
      const [row] = await rs.json<{ n: number | string }>();
      return Number(row?.n ?? 0);
    };
    const send = (from: number, to: number): Promise<void> => sendEdgeEnvelopes(brokers, config.topics.partials, { site: 'crash', t0Ms: T, from, to });

    try {
      await send(1, 5);
      await sendRejected(3);
      await waitFor(async () => (await countEvents(ch, 'crash')) === 50, 'the first 50 events', 60_000);
      await waitFor(async () => (await rejectedRows()) === 3, 'the first 3 rejected events', 60_000);
      expect(aggregator.health().status).toBe('running');
      expect(sink.health().status).toBe('running');

      await broker.stop();
      // The consumer crashes (kafkajs gives up), and the restarts during the outage crash too.
      await waitFor(() => events('consumer_restart_scheduled').length >= 2, 'two consumer restarts scheduled during the outage', 40_000);
      await waitFor(() => sinkEvents('consumer_restart_scheduled').length >= 1, 'a restart of the rejected-events consumer', 40_000);
      expect(aggregator.health().status).toBe('degraded');
      expect(aggregator.health().error).toMatch(/crashed/);
      expect(events('kafka_consumer_crashed').length).toBeGreaterThanOrEqual(1);
      expect(events('partitions_revoked')).not.toHaveLength(0);
      expect(fatal).toBeUndefined();

      await broker.start();
      await send(6, 10);
      await sendRejected(4);
      await waitFor(async () => (await countEvents(ch, 'crash')) === 100, 'the events sent after the outage', 60_000);
      await waitFor(() => aggregator.health().status === 'running', 'health back to running', 10_000);
      await waitFor(async () => (await rejectedRows()) === 7, 'the rejected events sent after the outage', 60_000);
      expect(sink.health().status).toBe('running');
      expect(sinkStatuses).toContain('degraded');
      expect(sinkEvents('consumer_recovered')).toHaveLength(1);
      expect(events('consumer_recovered')).toHaveLength(1);
      expect(statuses).toContain('degraded');
      expect(fatal).toBeUndefined();
      expect(events('aggregator_fatal')).toEqual([]);
      expect(lines.filter((l) => l.event === 'rejected_sink_fatal')).toEqual([]);
      await aggregator.flushAll();
      expect(await countEvents(ch, 'crash')).toBe(100);
    } finally {
      clearInterval(watch);
      await aggregator.stop();
      await sink.stop();
    }
  });
});
