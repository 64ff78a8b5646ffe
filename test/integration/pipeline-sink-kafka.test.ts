import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEnvelope, emptyPartial, encodeEnvelope } from '../../shared/algebra/index.ts';
import { createKafkaClient } from '../../core/kafka/client.ts';
import { createPipelineProducer, type KafkaPipelineSink } from '../../core/kafka/pipeline-producer.ts';
import type { RejectedRecord } from '../../schemas/rejected-record.ts';
import { mayRetryNow } from '../../shared/ports/pipeline-sink.ts';
import { testKafkaBrokers, uniqueName, waitFor } from './setup/kafka-test-env.ts';

// The PipelineSink contract (shared/ports/pipeline-sink.ts) on the real broker, for the Kafka
// implementation the Node edge and the gateway share: a send resolves only once Kafka has the
// records (acks = all), rejected records are JSON keyed by site, and a send Kafka refuses rejects.
const kafka = new Kafka({ clientId: 'pipeline-sink-test', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING });
const topics = { partials: uniqueName('sink-partials'), rejected: uniqueName('sink-rejected') };
// A topic that acknowledges none of our sends: its batch size limit is below a record batch's own header (61 bytes).
const unackable = uniqueName('sink-unackable');
const UNACKABLE_MAX_BYTES = 32;
const admin = kafka.admin();
let sink: KafkaPipelineSink;
let strictSink: KafkaPipelineSink;

beforeAll(async () => {
  await admin.connect();
  await admin.createTopics({
    topics: [
      ...[topics.partials, topics.rejected].map((topic) => ({ topic, numPartitions: 1 })),
      { topic: unackable, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: String(UNACKABLE_MAX_BYTES) }] },
    ],
    waitForLeaders: true,
  });
  const client = createKafkaClient({ brokers: testKafkaBrokers(), clientId: 'pipeline-sink-test-producer', log: () => undefined, retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 200 } });
  sink = createPipelineProducer({ kafka: client, topics: { ...topics, partialsRouting: 'source' } });
  strictSink = createPipelineProducer({ kafka: client, topics: { partials: unackable, rejected: unackable, partialsRouting: 'source' } });
  await sink.connect();
  await strictSink.connect();
});

afterAll(async () => {
  await sink?.disconnect();
  await strictSink?.disconnect();
  await admin.disconnect();
});

/** Messages in `topic` right now: its end offset (one partition). */
async function endOffset(topic: string): Promise<number> {
  const [p] = await admin.fetchTopicOffsets(topic);
  return Number(p?.high ?? 0);
}

function rejectedRecord(site: string, index: number, event: unknown = { type: 'track' }): RejectedRecord {
  return { site, received_at: '2026-12-06T00:00:00.000Z', index, message_id: null, errors: [{ path: '/event', message: 'is required' }], event };
}

function envelopeBytes(sequence: number): Uint8Array {
  const partial = emptyPartial();
  partial.count = 2;
  return encodeEnvelope({ version: 1, sourceId: 'sink-src', sequence, watermarkMs: 1_800_000_000_000, createdAtMs: 1_800_000_000_000, rows: [{ windowStartMs: 1_799_999_940_000, windowSizeMs: 60_000, site: 's', event: 'e', dimensions: [], partial }] });
}

describe('PipelineSink on Kafka', () => {
  it('never resolves a send Kafka did not acknowledge: each kind of send rejects, and nothing reached the topic', async () => {
    const bytes = envelopeBytes(1);
    await expect(strictSink.sendPartials({ key: 'sink-src', value: bytes })).rejects.toBeInstanceOf(Error);
    await expect(strictSink.sendPartialRecords(strictSink.routePartials({ key: 'sink-src', value: bytes }))).rejects.toBeInstanceOf(Error);
    await expect(strictSink.sendRejected([rejectedRecord('site-a', 0)])).rejects.toBeInstanceOf(Error);
    expect(await endOffset(unackable)).toBe(0);
  });

  it('resolves a send once Kafka has the envelope: the end offset already counts it', async () => {
    const bytes = envelopeBytes(1);
    const before = await endOffset(topics.partials);
    await sink.sendPartials({ key: 'sink-src', value: bytes });
    // No wait: acknowledged with acks = all means readable now.
    expect(await endOffset(topics.partials)).toBe(before + 1);
  });

  it('sends rejected records as JSON keyed by site, acknowledged when the send resolves; an empty batch sends nothing', async () => {
    const records = [rejectedRecord('site-a', 0), rejectedRecord('site-b', 1)];
    const before = await endOffset(topics.rejected);
    await sink.sendRejected(records);
    expect(await endOffset(topics.rejected)).toBe(before + 2);
    await sink.sendRejected([]);
    expect(await endOffset(topics.rejected)).toBe(before + 2);

    const received: KafkaMessage[] = [];
    const consumer = kafka.consumer({ groupId: uniqueName('sink-rejected-group'), maxWaitTimeInMs: 100 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: topics.rejected, fromBeginning: true });
      await consumer.run({ eachMessage: async ({ message }) => void received.push(message) });
      await waitFor(() => received.length >= 2, 'the rejected records');
    } finally {
      await consumer.disconnect();
    }
    expect(received.map((m) => [m.key?.toString(), JSON.parse(m.value?.toString() ?? '') as unknown])).toEqual(records.map((r) => [r.site, r]));
  });

  it('rejects a send Kafka refuses, marked not retriable, and acknowledges nothing of it', async () => {
    // Larger than the broker's message limit (1 MB by default): Kafka answers MESSAGE_TOO_LARGE.
    const huge = rejectedRecord('site-a', 0, { blob: 'x'.repeat(1_200_000) });
    const before = await endOffset(topics.rejected);
    const error = await sink.sendRejected([huge]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect(mayRetryNow(error)).toBe(false);
    expect(await endOffset(topics.rejected)).toBe(before);
  });

  it('routes an envelope to the records it sends: what the flush journal stores is what Kafka gets', async () => {
    const bytes = envelopeBytes(2);
    const records = sink.routePartials({ key: 'sink-src', value: bytes });
    expect(records).toHaveLength(1);
    const d = decodeEnvelope(new Uint8Array(records[0]!.value));
    expect(d.ok && d.value.sequence).toBe(2);
    const before = await endOffset(topics.partials);
    await sink.sendPartialRecords(records);
    expect(await endOffset(topics.partials)).toBe(before + 1);
  });
});
