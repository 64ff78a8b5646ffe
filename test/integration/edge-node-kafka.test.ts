import { Kafka, logLevel, type Consumer, type KafkaMessage } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeEnvelope, hllEstimate, type PartialEnvelope } from '../../shared/algebra/index.ts';
import { parseEdgeConfig } from '../../edge/config.ts';
import type { RejectedRecord } from '../../edge/ports.ts';
import { startNodeEdge } from '../../edge/node/server.ts';
import { testKafkaBrokers, uniqueName, waitFor } from './setup/kafka-test-env.ts';
import { tempDedupDir } from './setup/dedup-dir.ts';

// The Node edge against the real broker: HTTP in, idempotent producer out, envelopes decoded.
const kafka = new Kafka({ clientId: 'edge-node-kafka-test', brokers: testKafkaBrokers(), logLevel: logLevel.WARN });
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function createTopics(...topics: string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: topics.map((topic) => ({ topic, numPartitions: 1 })), waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

async function collect(topic: string): Promise<KafkaMessage[]> {
  const messages: KafkaMessage[] = [];
  const consumer: Consumer = kafka.consumer({ groupId: uniqueName('edge-test-group'), maxWaitTimeInMs: 100 });
  cleanups.push(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void messages.push(message) });
  return messages;
}

describe('Node edge -> Kafka', () => {
  it('acknowledges a batch only once its envelope is in the partials topic, and sends rejects to the rejected topic', async () => {
    const topics = { partials: uniqueName('edge-partials'), rejected: uniqueName('edge-rejected') };
    await createTopics(topics.partials, topics.rejected);
    const config = parseEdgeConfig({
      TRIBUTARY_WRITE_KEYS: 'wk_it:it-site',
      PSEUDONYM_SALT: 'integration-salt-0123456789',
      FLUSH_INTERVAL_MS: '100',
      HEARTBEAT_MS: '200',
      DIMENSIONS: 'path',
      DEDUP_DIR: tempDedupDir(),
    });
    if (!config.ok) throw new Error(config.errors.join('\n'));
    const edge = await startNodeEdge({ config: config.config, brokers: testKafkaBrokers(), port: 0, hostname: '127.0.0.1', topics, log: () => undefined });
    cleanups.push(() => edge.close());
    expect(edge.sourceId).toMatch(/^edge-.+-[0-9a-f]{32}$/);

    const partials = await collect(topics.partials);
    const rejected = await collect(topics.rejected);
    const now = new Date().toISOString();
    const batch = [
      ...Array.from({ length: 30 }, (_, i) => ({ type: 'track', event: 'signup', userId: `user-${i % 10}`, messageId: `it-${i}`, timestamp: now, context: { page: { path: '/join' } }, properties: { value: i } })),
      { type: 'track', messageId: 'it-bad', userId: 'secret-user@example.com' },
    ];
    const res = await fetch(`${edge.url}/v1/batch`, {
      method: 'POST',
      headers: { authorization: `Basic ${btoa('wk_it:')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ batch, sentAt: now }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, accepted: 30, rejected: [{ index: 30, messageId: 'it-bad' }] });

    const envelopes = (): PartialEnvelope[] =>
      partials.map((m) => {
        const d = decodeEnvelope(new Uint8Array(m.value ?? Buffer.alloc(0)));
        if (!d.ok) throw new Error(d.error.message);
        return d.value;
      });
    await waitFor(() => envelopes().some((e) => e.rows.length > 0), 'an envelope with rows');
    const withRows = envelopes().filter((e) => e.rows.length > 0);
    expect(withRows).toHaveLength(1);
    const [row] = withRows[0]!.rows;
    expect(row).toMatchObject({ site: 'it-site', event: 'signup', dimensions: [['path', '/join']] });
    expect(row!.partial).toMatchObject({ count: 30, valueCount: 30, sum: 435, min: 0, max: 29 });
    expect(Math.round(hllEstimate(row!.partial.users))).toBe(10);
    // Cell routing (ADR 0008) into a one-partition topic: one part per envelope, sub-source `<source>#0`.
    expect(partials.every((m) => m.key?.toString() === `${edge.sourceId}#0`)).toBe(true);
    const sequences = envelopes().map((e) => e.sequence);
    expect([...sequences].sort((a, b) => a - b)).toEqual(sequences);

    await waitFor(() => rejected.length === 1, 'the rejected record');
    const record = JSON.parse(rejected[0]!.value!.toString()) as RejectedRecord;
    expect(record).toMatchObject({ site: 'it-site', index: 30, message_id: 'it-bad', errors: [{ path: '/event', message: 'is required' }] });
    expect(rejected[0]!.value!.toString()).not.toContain('secret-user');

    // Idle: heartbeats keep coming with a rising watermark.
    const before = envelopes().length;
    await waitFor(() => envelopes().length >= before + 2, 'two heartbeats');
    const marks = envelopes().map((e) => e.watermarkMs);
    expect(marks.every((m, i) => i === 0 || m >= marks[i - 1]!)).toBe(true);
  });
});
