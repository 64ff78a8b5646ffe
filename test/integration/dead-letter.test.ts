import type { EachMessagePayload } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConfiguredAggregator } from '../../core/aggregator/from-config.ts';
import { addToPartial, emptyPartial, encodeEnvelope } from '../../shared/algebra/index.ts';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { createKafka } from '../../core/kafka/client.ts';
import { ensurePipelineTopics } from '../../core/kafka/topics.ts';
import { silentLogger } from '../../core/log.ts';
import { countEvents, envelopeBytes, openTestClickHouse, testCoreConfig, testKafka, type RunningAggregator } from './helpers/aggregator-harness.ts';
import { testKafkaBrokers, uniqueName, waitFor } from './setup/kafka-test-env.ts';

let ch: ClickHouse;
beforeAll(async () => {
  ch = await openTestClickHouse('trib-dlq');
});
afterAll(async () => {
  await ch?.close();
});

describe('a poison message in partials', () => {
  it('lands in the dead-letter topic with its reason and coordinates, and the partition keeps flowing', async () => {
    const brokers = testKafkaBrokers();
    const config = testCoreConfig(brokers);
    const kafka = testKafka(brokers);
    await ensurePipelineTopics(createKafka(brokers, 'dlq-test', silentLogger()), config);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const T = Date.UTC(2026, 0, 1);
    // Produced straight to Kafka, past the edge's ±1e15 bound: it would make the site's sum infinite.
    const forged = emptyPartial();
    addToPartial(forged, { value: 1 });
    forged.sum = 1.7976931348623157e308;
    const forgedBytes = Buffer.from(encodeEnvelope({ version: 1, sourceId: 's2', sequence: 1, watermarkMs: T, createdAtMs: T, rows: [{ windowStartMs: T, windowSizeMs: 60_000, site: 'dlq-site', event: 'e', dimensions: [], partial: forged }] }));
    // Everything on partition 0, poison in the middle: the valid ones after it must still count.
    await producer.send({
      topic: config.topics.partials,
      acks: -1,
      messages: [
        { partition: 0, key: 's1', value: envelopeBytes({ sourceId: 's1', sequence: 1, watermarkMs: T, windowStartMs: T, site: 'dlq-site', events: 5 }) },
        { partition: 0, key: 's1', value: Buffer.from('this is not an envelope') },
        { partition: 0, key: 's1', value: Buffer.from([0x54, 0x52, 0x42, 0x01, 0x01, 0xff, 0xff, 0xff]) },
        { partition: 0, key: 's2', value: forgedBytes },
        { partition: 0, key: 's1', value: envelopeBytes({ sourceId: 's1', sequence: 2, watermarkMs: T + 120_000, windowStartMs: T, site: 'dlq-site', events: 7 }) },
      ],
    });
    await producer.disconnect();

    const aggregator: RunningAggregator = await startConfiguredAggregator(createKafka(brokers, 'dlq-agg', silentLogger()), ch, config, silentLogger());
    try {
      await waitFor(async () => (await countEvents(ch, 'dlq-site')) === 12, 'both valid envelopes counted', 60_000);
      expect(aggregator.stats().deadLettered).toBe(3);
      const rs = await ch.client.query({ query: 'SELECT sum(value_sum) AS s FROM agg_minute WHERE site = {site:String}', query_params: { site: 'dlq-site' }, format: 'JSONEachRow' });
      expect(await rs.json()).toEqual([{ s: 12 }]);
    } finally {
      await aggregator.stop();
    }

    const dead: Array<{ key: string; value: string; headers: Record<string, string> }> = [];
    const consumer = kafka.consumer({ groupId: uniqueName('dlq-reader') });
    await consumer.connect();
    await consumer.subscribe({ topic: config.topics.deadLetter, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }: EachMessagePayload) => {
        const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
        dead.push({ key: String(message.key), value: String(message.value), headers });
      },
    });
    await waitFor(async () => dead.length === 3, 'three dead letters', 60_000);
    await consumer.disconnect();
    expect(dead[0]).toMatchObject({
      key: `${config.topics.partials}:0:1`,
      value: 'this is not an envelope',
      headers: { reason: 'undecodable_envelope', error_code: 'bad_magic', source_topic: config.topics.partials, source_partition: '0', source_offset: '1' },
    });
    expect(dead[1]?.headers).toMatchObject({ reason: 'undecodable_envelope', source_offset: '2' });
    expect(dead[1]?.headers.error_code).toMatch(/truncated|malformed|unsupported_version/);
    expect(dead[2]?.headers).toMatchObject({ error_code: 'value_out_of_bounds', source_offset: '3' });
    expect(dead[2]?.headers.error_message).toContain('row 0 of source "s2" sequence 1: sum 1.7976931348623157e+308 is not a finite number');
  });
});
