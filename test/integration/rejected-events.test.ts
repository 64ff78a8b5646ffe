import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { createKafka } from '../../core/kafka/client.ts';
import { silentLogger } from '../../core/log.ts';
import { createMetricsRegistry } from '../../core/metrics.ts';
import { startConfiguredRejectedSink, startRejectedSink } from '../../core/rejected/rejected-sink.ts';
import { parseEdgeConfig } from '../../edge/config.ts';
import { startNodeEdge } from '../../edge/node/server.ts';
import { openTestClickHouse, testCoreConfig, testKafka } from './helpers/aggregator-harness.ts';
import { testKafkaBrokers, uniqueName, waitFor } from './setup/kafka-test-env.ts';
import { tempDedupDir } from './setup/dedup-dir.ts';

// Refused events: Node edge -> topic `rejected` -> sink -> ClickHouse rejected_events, with the
// reasons, without the personal data, counted in Prometheus, and once per record after a replay.
let ch: ClickHouse;
beforeAll(async () => {
  ch = await openTestClickHouse('trib-rejected');
});
afterAll(async () => {
  await ch?.close();
});

interface Row {
  site: string;
  batch_index: number;
  message_id: string | null;
  errors: Array<{ path: string; message: string }>;
  event: string;
}

async function rows(final: boolean): Promise<Row[]> {
  const rs = await ch.client.query({
    query: `SELECT site, batch_index, message_id, errors, event FROM rejected_events ${final ? 'FINAL' : ''} ORDER BY kafka_offset`,
    format: 'JSONEachRow',
  });
  return rs.json<Row>();
}

describe('rejected events', () => {
  it('are recorded in rejected_events with their reasons and no personal data, and counted once', async () => {
    const brokers = testKafkaBrokers();
    const config = testCoreConfig(brokers, { REJECTED_TOPIC: uniqueName('rejected') });
    const admin = testKafka(brokers).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: config.topics.partials, numPartitions: 1 }, { topic: config.topics.rejected, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();

    const edgeConfig = parseEdgeConfig({ TRIBUTARY_WRITE_KEYS: 'wk_rej:rej-site', PSEUDONYM_SALT: 'integration-salt-0123456789', FLUSH_INTERVAL_MS: '100', DEDUP_DIR: tempDedupDir() });
    if (!edgeConfig.ok) throw new Error(edgeConfig.errors.join('\n'));
    const edge = await startNodeEdge({ config: edgeConfig.config, brokers, port: 0, hostname: '127.0.0.1', topics: config.topics, log: () => undefined });
    const registry = createMetricsRegistry();
    const sink = await startConfiguredRejectedSink(createKafka(brokers, 'rejected-sink', silentLogger()), ch, config, silentLogger(), registry);
    try {
      const now = new Date().toISOString();
      const res = await fetch(`${edge.url}/v1/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from('wk_rej:').toString('base64')}` },
        body: JSON.stringify({
          batch: [
            { type: 'track', event: 'signup', userId: 'u1', messageId: 'ok-1', timestamp: now },
            { type: 'track', messageId: 'bad-1', userId: 'secret-user@example.com', timestamp: now },
            { type: 'page', messageId: 'bad-2', anonymousId: 'anon-1', timestamp: 'yesterday-ish', properties: { email: 'jane@example.com' } },
          ],
        }),
      });
      expect(res.status).toBe(200);
      // A record that is not what the edges write is kept too, and says so.
      const producer = testKafka(brokers).producer();
      await producer.connect();
      await producer.send({ topic: config.topics.rejected, messages: [{ key: 'x', value: 'not json' }] });
      await producer.disconnect();

      await waitFor(async () => (await rows(false)).length >= 3, 'three rejected rows', 30_000);
      const got = await rows(false);
      expect(got.map((r) => [r.site, r.batch_index, r.message_id])).toEqual([['rej-site', 1, 'bad-1'], ['rej-site', 2, 'bad-2'], ['', 0, null]]);
      expect(got[0]!.errors.some((e) => e.path === '/event')).toBe(true);
      expect(got[1]!.errors.some((e) => e.path === '/timestamp')).toBe(true);
      expect(got[2]!.errors[0]!.message).toMatch(/not a rejected-event record/);
      expect(got[2]!.event).toBe('not json');
      const stored = JSON.stringify(got);
      for (const secret of ['secret-user@example.com', 'jane@example.com', 'anon-1']) expect(stored).not.toContain(secret);
      // The sink counts a batch once its insert returned, a moment after the rows are visible.
      const counted = /tributary_rejected_events_total\{site="rej-site"\} (\d+)/;
      await waitFor(async () => counted.test(await registry.getSingleMetricAsString('tributary_rejected_events_total')), 'the rejected-events counter', 10_000);
      expect(counted.exec(await registry.getSingleMetricAsString('tributary_rejected_events_total'))?.[1]).toBe('2');
    } finally {
      await sink.stop();
      await edge.close();
    }

    // A crash between insert and offset commit replays batches: a sink with a fresh group reads
    // everything again, and the table still holds one row per record.
    const replay = await startRejectedSink({ kafka: createKafka(brokers, 'rejected-replay', silentLogger()), client: ch.client, topic: config.topics.rejected, groupId: uniqueName('replay'), logger: silentLogger() });
    try {
      await waitFor(() => replay.written() === 3, 'replay read every record', 30_000);
    } finally {
      await replay.stop();
    }
    expect(await rows(true)).toHaveLength(3);
  });

  it('stop the sink with what to do on a permanent ClickHouse error, committing nothing', async () => {
    const brokers = testKafkaBrokers();
    const topic = uniqueName('rejected-perm');
    const groupId = uniqueName('rejected-perm-sink');
    const kafka = testKafka(brokers);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ key: 'x', value: JSON.stringify({ site: 'perm-site', index: 0, errors: [] }) }] });
    await producer.disconnect();
    // A ClickHouse without the table (migrations not run): retrying cannot help.
    await ch.client.command({ query: 'RENAME TABLE rejected_events TO rejected_events_moved' });
    const sink = await startRejectedSink({ kafka: createKafka(brokers, 'rejected-perm', silentLogger()), client: ch.client, topic, groupId, logger: silentLogger(), retryDelayMs: 10 });
    try {
      const err = await sink.fatal;
      expect(err.message).toContain('UNKNOWN_TABLE');
      expect(err.message).toContain('tributary migrate');
      expect(sink.health()).toEqual({ status: 'failed', error: err.message });
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      expect(committed?.partitions.map((p) => p.offset)).toEqual(['-1']);
      expect(sink.written()).toBe(0);
    } finally {
      await sink.stop();
      await ch.client.command({ query: 'RENAME TABLE rejected_events_moved TO rejected_events' });
      await admin.disconnect();
    }
  });
});
