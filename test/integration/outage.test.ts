import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckpointStore } from '../../core/aggregator/checkpoint.ts';
import { startAggregator, type RunningAggregator } from '../../core/aggregator/kafka-runner.ts';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { createClickHouseCheckpointStore } from '../../core/clickhouse/checkpoint-store.ts';
import { createEmissionWriter, type EmissionWriter } from '../../core/clickhouse/emission-writer.ts';
import { createKafka } from '../../core/kafka/client.ts';
import { ensurePipelineTopics } from '../../core/kafka/topics.ts';
import { silentLogger } from '../../core/log.ts';
import { createAggregatorMetrics, createMetricsRegistry } from '../../core/metrics.ts';
import { aggregatorMetricsHooks } from '../../core/metrics-hooks.ts';
import { countEvents, openTestClickHouse, sendEdgeEnvelopes, testCoreConfig } from './helpers/aggregator-harness.ts';
import { useOwnBroker } from './helpers/own-broker.ts';
import { waitFor } from './setup/kafka-test-env.ts';

// ClickHouse unavailable for 20 s and Kafka for 12 s plus its restart in the middle of a run:
// after recovery nothing is lost and nothing is counted twice. The lengths are what the paths
// need, not more: a ClickHouse outage of 20 s outlasts the group's timeouts (the blocked
// consumer's commits come back fenced, or it crashes, and its partitions are restored; one of
// 12 s does not get that far), and the broker stays away longer than kafkajs' retries (about
// 10 s), so the consumer crashes and restarts in process. The broker is this file's own, so
// stopping it does not disturb the shared one. ClickHouse stays the real engine; a switch in
// front of it refuses every write while it is "down", as a crashed server would.
const T = Date.UTC(2026, 0, 1, 10);
let ch: ClickHouse;
const broker = useOwnBroker('trib-outage');

interface Switch { down: boolean; refused: number }
function unavailableWhenDown<T extends object>(target: T, sw: Switch): T {
  return new Proxy(target, {
    get(obj, prop, receiver) {
      const value = Reflect.get(obj, prop, receiver) as unknown;
      // Encoding is pure and in process: only the calls that reach ClickHouse fail.
      if (typeof value !== 'function' || prop === 'encode') return value;
      return (...args: unknown[]) => {
        if (sw.down) {
          sw.refused++;
          return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:8123 (ClickHouse is down)'));
        }
        return (value as (...a: unknown[]) => unknown).apply(obj, args);
      };
    },
  });
}

beforeAll(async () => {
  ch = await openTestClickHouse('trib-outage');
}, 120_000);

afterAll(async () => {
  await ch?.close();
});

describe('outages in the middle of a run', () => {
  it('loses nothing and counts nothing twice across a 20 s ClickHouse and a 12 s Kafka outage', { timeout: 240_000 }, async () => {
    const brokers = broker.brokers;
    const config = testCoreConfig(brokers);
    await ensurePipelineTopics(createKafka(brokers, 'outage-setup', silentLogger()), config);
    const sw: Switch = { down: false, refused: 0 };
    const registry = createMetricsRegistry({ processMetrics: false });
    /** Summed consumer lag as Prometheus would scrape it. */
    const lag = async (): Promise<number> =>
      [...(await registry.metrics()).matchAll(/^tributary_aggregator_consumer_lag_messages\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    const aggregator: RunningAggregator = await startAggregator({
      kafka: createKafka(brokers, 'outage-agg', silentLogger()),
      topic: config.topics.partials,
      groupId: config.aggregator.groupId,
      deadLetterTopic: config.topics.deadLetter,
      writer: unavailableWhenDown<EmissionWriter>(createEmissionWriter(ch), sw),
      checkpoints: unavailableWhenDown<CheckpointStore>(createClickHouseCheckpointStore(ch, createEmissionWriter(ch)), sw),
      settings: config.aggregator,
      emitIntervalMs: 100,
      sessionTimeoutMs: 6000,
      retryDelayMs: 200,
      logger: silentLogger(),
      hooks: aggregatorMetricsHooks(createAggregatorMetrics(registry)),
      highWatermarkIntervalMs: 500,
    });
    const send = (from: number, to: number): Promise<void> => sendEdgeEnvelopes(brokers, config.topics.partials, { site: 'outage', t0Ms: T, from, to });

    try {
      await send(1, 10);
      await waitFor(async () => (await countEvents(ch, 'outage')) === 100, 'the first 100 events', 60_000);

      // ClickHouse down for 20 s while input keeps arriving.
      sw.down = true;
      const outageEnds = Date.now() + 20_000;
      await send(11, 20);
      // Nothing commits while writes fail: the lag (high watermark − last confirmed commit) shows the blocked input.
      await waitFor(async () => (await lag()) >= 10, 'consumer lag of the 10 blocked envelopes', 20_000);
      await new Promise((r) => setTimeout(r, Math.max(0, outageEnds - Date.now())));
      expect(sw.refused).toBeGreaterThan(0);
      expect(await lag()).toBeGreaterThanOrEqual(10);
      sw.down = false;
      await waitFor(async () => (await countEvents(ch, 'outage')) === 200, 'catch-up after the ClickHouse outage', 60_000);
      await waitFor(async () => (await lag()) === 0, 'consumer lag back to 0', 30_000);

      // Kafka down for 12 s, and until its restart is done.
      await broker.stop();
      await new Promise((r) => setTimeout(r, 12_000));
      await broker.start();
      await send(21, 30);
      // An edge retry of an envelope that had landed: counted once.
      await send(30, 30);
      await waitFor(async () => (await countEvents(ch, 'outage')) === 300, 'catch-up after the Kafka outage', 120_000);
      await aggregator.flushAll();
      expect(await countEvents(ch, 'outage')).toBe(300);
      expect(aggregator.stats().duplicates).toBeGreaterThanOrEqual(1);
      expect(aggregator.stats().writeFailures).toBeGreaterThan(0);
    } finally {
      await aggregator.stop();
    }
  });
});
