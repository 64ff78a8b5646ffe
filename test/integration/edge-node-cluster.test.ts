import { Kafka, logLevel, type Consumer, type KafkaMessage } from 'kafkajs';
import { Agent } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeEnvelope, sourceOfSubSource, type PartialEnvelope } from '../../shared/algebra/index.ts';
import { parseEdgeConfig } from '../../edge/config.ts';
import { startNodeEdge } from '../../edge/node/server.ts';
import { beacon } from './helpers/beacon.ts';
import { testKafkaBrokers, uniqueName, waitFor } from './setup/kafka-test-env.ts';
import { tempDedupDir } from './setup/dedup-dir.ts';

// EDGE_PROCESSES: one port, several edge processes, each a source of its own in Kafka.
const kafka = new Kafka({ clientId: 'edge-node-cluster-test', brokers: testKafkaBrokers(), logLevel: logLevel.WARN });
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function collect(topic: string): Promise<KafkaMessage[]> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();
  const messages: KafkaMessage[] = [];
  const consumer: Consumer = kafka.consumer({ groupId: uniqueName('edge-cluster-group'), maxWaitTimeInMs: 100 });
  cleanups.push(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void messages.push(message) });
  return messages;
}

describe('Node edge with EDGE_PROCESSES=2', () => {
  it('serves one port from two processes, each producing as its own source; nothing lost or doubled', async () => {
    const topics = { partials: uniqueName('cluster-partials'), rejected: uniqueName('cluster-rejected') };
    const partials = await collect(topics.partials);
    await collect(topics.rejected);
    const config = parseEdgeConfig({ TRIBUTARY_WRITE_KEYS: 'wk_it:it-site', PSEUDONYM_SALT: 'integration-salt-0123456789', FLUSH_INTERVAL_MS: '100', HEARTBEAT_MS: '200', DIMENSIONS: 'path', DEDUP_DIR: tempDedupDir() });
    if (!config.ok) throw new Error(config.errors.join('\n'));
    const edge = await startNodeEdge({ config: config.config, brokers: testKafkaBrokers(), port: 0, hostname: '127.0.0.1', topics, sourceId: uniqueName('edge-cl'), processes: 2, log: () => undefined });
    cleanups.push(() => edge.close());

    const health = await edge.health();
    expect(health.map((h) => h.sourceId).sort()).toEqual([`${edge.sourceId}-1`, `${edge.sourceId}-2`]);
    expect(health.every((h) => h.status === 200)).toBe(true);

    // No keep-alive: every beacon opens a connection, so both workers get some.
    const agent = new Agent({ keepAlive: false });
    const now = new Date().toISOString();
    const statuses = await Promise.all(
      Array.from({ length: 40 }, (_, i) => beacon(edge.url, agent, { type: 'track', event: 'view', userId: `u${i}`, messageId: `cl-${i}`, timestamp: now, writeKey: 'wk_it', context: { page: { path: '/p' } } })),
    );
    expect(statuses.every((s) => s === 202)).toBe(true);

    const envelopes = (): PartialEnvelope[] =>
      partials.map((m) => {
        const d = decodeEnvelope(new Uint8Array(m.value ?? Buffer.alloc(0)));
        if (!d.ok) throw new Error(d.error.message);
        return d.value;
      });
    const counted = (): number => envelopes().reduce((n, e) => n + e.rows.reduce((k, r) => k + r.partial.count, 0), 0);
    await waitFor(() => counted() >= 40, '40 events in the partials topic');
    expect(counted()).toBe(40);

    // Each worker is a source: its own key, its own increasing sequence.
    const bySource = new Map<string, number[]>();
    // Parts of a cell-routed envelope carry `<source>#<partition>` (ADR 0008).
    for (const e of envelopes()) bySource.set(sourceOfSubSource(e.sourceId), [...(bySource.get(sourceOfSubSource(e.sourceId)) ?? []), e.sequence]);
    expect([...bySource.keys()].sort()).toEqual([`${edge.sourceId}-1`, `${edge.sourceId}-2`]);
    for (const sequences of bySource.values()) expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    expect(partials.every((m) => bySource.has(sourceOfSubSource(m.key?.toString() ?? '')))).toBe(true);
    // Both took a share of the connections.
    const withRows = new Set(envelopes().filter((e) => e.rows.length > 0).map((e) => sourceOfSubSource(e.sourceId)));
    expect(withRows.size).toBe(2);

    // /health per process: the beacons split between the workers' counters.
    const after = await edge.health();
    expect(after).toHaveLength(2);
    await edge.close();
    agent.destroy();
  });

  it('refuses sinks or a salt provider it cannot hand to its workers', async () => {
    const config = parseEdgeConfig({ TRIBUTARY_ENV: 'dev' });
    if (!config.ok) throw new Error(config.errors.join('\n'));
    const sink = { sendPartials: async () => undefined, sendRejected: async () => undefined };
    await expect(startNodeEdge({ config: config.config, brokers: [], port: 0, processes: 2, sink })).rejects.toThrow(/workerSetup/);
  });
});
