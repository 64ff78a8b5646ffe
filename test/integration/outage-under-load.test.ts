import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConfiguredAggregator } from '../../core/aggregator/from-config.ts';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { createKafka } from '../../core/kafka/client.ts';
import { startLocalKafka, stopLocalKafka, type LocalKafkaOptions } from '../../core/kafka/local-broker.ts';
import { resolveLocalKafkaConfig } from '../../core/kafka/local-kafka-config.ts';
import { isPortFree } from '../../core/kafka/os-probes.ts';
import { ensurePipelineTopics } from '../../core/kafka/topics.ts';
import { silentLogger } from '../../core/log.ts';
import { countEvents, envelopeBytes, openTestClickHouse, testCoreConfig, testKafka, type RunningAggregator } from './helpers/aggregator-harness.ts';
import { waitFor } from './setup/kafka-test-env.ts';

// Issue 9, point 1, at the aggregator: input keeps arriving while the broker stops for 20 s and
// comes back, so the consumer restarts and rejoins while epochs are being cut and committed (the
// window in which kafkajs resolves commits without committing). Every envelope the producers got
// acknowledged must be counted exactly once. The broker is this file's own.
const T = Date.UTC(2026, 0, 1, 14);
const SOURCES = ['load-a', 'load-b', 'load-c', 'load-d'];
const EVENTS = 10;
let ch: ClickHouse;
let broker: LocalKafkaOptions;

async function freePortPair(): Promise<number> {
  for (let port = 33000 + Math.floor(Math.random() * 2000) * 2; ; port += 2) {
    if ((await isPortFree(port)) && (await isPortFree(port + 1))) return port;
  }
}

beforeAll(async () => {
  ch = await openTestClickHouse('trib-outage-load');
  broker = { cacheDir: resolveLocalKafkaConfig().cacheDir, dataDir: mkdtempSync(join(tmpdir(), 'trib-outage-load-kafka-')), port: await freePortPair() };
  await startLocalKafka(broker);
}, 120_000);

afterAll(async () => {
  await stopLocalKafka(broker).catch(() => undefined);
  await ch?.close();
});

/**
 * Sends envelopes of every source in order, like an edge: a send that fails is retried with the
 * same sequences until acknowledged (it may have landed: the aggregator's (source, sequence)
 * dedup absorbs that), and the next sequence goes out only after.
 */
function startLoad(brokers: string[], topic: string): { stop(): Promise<number> } {
  let running = true;
  let acknowledged = 0;
  const loop = (async () => {
    let seq = 0;
    let producer = testKafka(brokers).producer({ allowAutoTopicCreation: false, maxInFlightRequests: 1, retry: { retries: 2, maxRetryTime: 1000 } });
    await producer.connect();
    while (running) {
      seq++;
      const messages = SOURCES.map((source) => ({ key: source, value: envelopeBytes({ sourceId: source, sequence: seq, watermarkMs: T + seq * 50, windowStartMs: T + Math.floor((seq * 50) / 60_000) * 60_000, site: 'load', events: EVENTS }) }));
      for (;;) {
        try {
          await producer.send({ topic, acks: -1, messages });
          acknowledged += messages.length;
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 250));
          await producer.disconnect().catch(() => undefined);
          producer = testKafka(brokers).producer({ allowAutoTopicCreation: false, maxInFlightRequests: 1, retry: { retries: 2, maxRetryTime: 1000 } });
          await producer.connect().catch(() => undefined);
        }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await producer.disconnect().catch(() => undefined);
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return acknowledged;
    },
  };
}

describe('a broker outage under load', () => {
  it('counts every acknowledged envelope exactly once', { timeout: 300_000 }, async () => {
    const brokers = [`127.0.0.1:${broker.port}`];
    const config = testCoreConfig(brokers, { EMIT_INTERVAL_MS: '50' });
    await ensurePipelineTopics(createKafka(brokers, 'outage-load-setup', silentLogger()), config);
    const aggregator: RunningAggregator = await startConfiguredAggregator(createKafka(brokers, 'outage-load-agg', silentLogger()), ch, config, silentLogger());
    const load = startLoad(brokers, config.topics.partials);
    try {
      await waitFor(async () => (await countEvents(ch, 'load')) > 2_000, 'counts flowing before the outage', 60_000);
      await stopLocalKafka(broker);
      await new Promise((r) => setTimeout(r, 20_000));
      await startLocalKafka(broker);
      await waitFor(async () => (await countEvents(ch, 'load')) > 0 && aggregator.health().status === 'running', 'the aggregator back', 60_000);
      await new Promise((r) => setTimeout(r, 8_000));
      const acknowledged = await load.stop();
      await waitFor(async () => (await countEvents(ch, 'load')) >= acknowledged * EVENTS, `all ${acknowledged} acknowledged envelopes counted`, 120_000);
      await aggregator.flushAll();
      const stats = aggregator.stats();
      console.log(JSON.stringify({ event: 'outage_under_load_summary', acknowledged, commits_refused: stats.commitsRefused, abandons: stats.abandons, restores: stats.restores, duplicates: stats.duplicates }));
      expect(await countEvents(ch, 'load')).toBe(acknowledged * EVENTS);
      expect(aggregator.health().status).toBe('running');
    } finally {
      await load.stop();
      await aggregator.stop();
    }
  });
});
