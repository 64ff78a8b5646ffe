import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConfiguredAggregator } from '../../core/aggregator/from-config.ts';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { createKafka } from '../../core/kafka/client.ts';
import { ensurePipelineTopics } from '../../core/kafka/topics.ts';
import { silentLogger } from '../../core/log.ts';
import { countEvents, envelopeBytes, openTestClickHouse, testCoreConfig, testKafka } from './helpers/aggregator-harness.ts';
import { testKafkaBrokers, waitFor } from './setup/kafka-test-env.ts';

let ch: ClickHouse;
beforeAll(async () => {
  ch = await openTestClickHouse('trib-catch-up');
});
afterAll(async () => {
  await ch?.close();
});

const ENVELOPES = 2000;
const EMIT_INTERVAL_MS = 50;

describe('an aggregator behind its input (catch-up)', () => {
  it('grows its epochs while input is waiting in Kafka, and returns to the emit interval once caught up', async () => {
    const brokers = testKafkaBrokers();
    // Tiny fetches: the backlog arrives in hundreds of batches, each seeing more input waiting.
    const config = testCoreConfig(brokers, {
      EMIT_INTERVAL_MS: String(EMIT_INTERVAL_MS),
      CATCHUP_EMIT_MAX_MS: '120000',
      AGGREGATOR_MAX_BYTES_PER_PARTITION: '1024',
    });
    await ensurePipelineTopics(createKafka(brokers, 'catch-up-test', silentLogger()), config);
    const producer = testKafka(brokers).producer();
    await producer.connect();
    const T = Date.UTC(2026, 0, 1);
    // One send per envelope, so one record batch each and no fetch can take more than one; one
    // source per envelope, so the order in which concurrent sends land does not matter.
    const send = (i: number): Promise<unknown> =>
      producer.send({
        topic: config.topics.partials,
        acks: -1,
        messages: [{ partition: 0, key: `s${i}`, value: envelopeBytes({ sourceId: `s${i}`, sequence: 1, watermarkMs: T + 1, windowStartMs: T, site: 'catch-up', events: 1 }) }],
      });
    for (let i = 0; i < ENVELOPES; i += 50) await Promise.all(Array.from({ length: 50 }, (_, k) => send(i + k)));

    const aggregator = await startConfiguredAggregator(createKafka(brokers, 'catch-up-agg', silentLogger()), ch, config, silentLogger());
    try {
      await waitFor(() => aggregator.stats().messages > 0, 'first message ingested', 60_000);
      const started = Date.now();
      await waitFor(() => aggregator.stats().messages === ENVELOPES, 'backlog ingested', 60_000);
      const catchUpMs = Date.now() - started;
      await waitFor(async () => (await countEvents(ch, 'catch-up')) === ENVELOPES, 'backlog written', 60_000);
      await waitFor(() => aggregator.stats().emissions > 0, 'backlog epoch counted', 30_000);
      const epochsForBacklog = aggregator.stats().emissions;
      // The catch-up lasted many emit intervals (else this test could not tell the difference)...
      expect(catchUpMs).toBeGreaterThan(5 * EMIT_INTERVAL_MS);
      // ...yet it was written in one epoch, plus at most the one cut when the partition caught up.
      expect(epochsForBacklog).toBeLessThanOrEqual(2);

      // Caught up: a new envelope is written at the normal cadence, not after CATCHUP_EMIT_MAX_MS.
      await producer.send({
        topic: config.topics.partials,
        acks: -1,
        messages: [{ partition: 0, key: 'fresh', value: envelopeBytes({ sourceId: 'fresh', sequence: 1, watermarkMs: T + 1, windowStartMs: T, site: 'catch-up', events: 1 }) }],
      });
      await waitFor(async () => (await countEvents(ch, 'catch-up')) === ENVELOPES + 1, 'fresh envelope written within 30 s (catch-up epochs may last 120 s)', 30_000);
      // The stats count an epoch once all its tables are written, a moment after agg_minute shows it.
      await waitFor(() => aggregator.stats().emissions > epochsForBacklog, 'a new epoch for the fresh envelope', 30_000);
    } finally {
      await aggregator.stop();
      await producer.disconnect();
    }
  });
});
