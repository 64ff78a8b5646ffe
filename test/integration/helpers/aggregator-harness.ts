import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { addToPartial, emptyPartial, encodeEnvelope, hash64 } from '../../../shared/algebra/index.ts';
import type { RunningAggregator } from '../../../core/aggregator/kafka-runner.ts';
import { openClickHouse, type ClickHouse } from '../../../core/clickhouse/client.ts';
import { migrate } from '../../../core/clickhouse/migrate.ts';
import { parseCoreConfig, type CoreConfig } from '../../../core/config/core-config.ts';
import { uniqueName } from '../setup/kafka-test-env.ts';

/** One chdb directory per test file (libchdb binds one per process), migrated. */
export async function openTestClickHouse(prefix: string): Promise<ClickHouse> {
  const ch = await openClickHouse({ kind: 'embedded', path: mkdtempSync(join(tmpdir(), `${prefix}-`)) });
  await migrate(ch.client);
  return ch;
}

/** Aggregator settings for tests: fast emissions, short session timeout, unique topics and group. */
export function testCoreConfig(brokers: string[], overrides: Record<string, string> = {}): CoreConfig {
  const parsed = parseCoreConfig({
    KAFKA_BROKERS: brokers.join(','),
    PARTIALS_TOPIC: uniqueName('partials'),
    DEAD_LETTER_TOPIC: uniqueName('dlq'),
    AGGREGATOR_GROUP: uniqueName('aggregator'),
    WINDOW_SIZE_MS: '60000',
    ALLOWED_LATENESS_MS: '0',
    EMIT_INTERVAL_MS: '100',
    AGGREGATOR_SESSION_TIMEOUT_MS: '6000',
    ...overrides,
  });
  if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
  return parsed.config;
}

export function testKafka(brokers: string[]): Kafka {
  return new Kafka({ clientId: uniqueName('test'), brokers, logLevel: logLevel.NOTHING, retry: { retries: 20, maxRetryTime: 5000 } });
}

/** An envelope with `events` events for `site` in the window starting at `windowStartMs`. */
/**
 * Produces envelopes `from`..`to` of source `edge-1` (10 events each, one per second of event
 * time from `t0Ms`, all in window `t0Ms`) to `topic`, idempotently and acknowledged by all
 * replicas, as a Node edge would.
 */
export async function sendEdgeEnvelopes(brokers: string[], topic: string, o: { site: string; t0Ms: number; from: number; to: number }): Promise<void> {
  const producer = testKafka(brokers).producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let seq = o.from; seq <= o.to; seq++) {
      await producer.send({
        topic,
        acks: -1,
        messages: [{ key: 'edge-1', value: envelopeBytes({ sourceId: 'edge-1', sequence: seq, watermarkMs: o.t0Ms + seq * 1000, windowStartMs: o.t0Ms, site: o.site, events: 10 }) }],
      });
    }
  } finally {
    await producer.disconnect();
  }
}

export function envelopeBytes(o: { sourceId: string; sequence: number; watermarkMs: number; windowStartMs: number; site: string; events: number; users?: number }): Buffer {
  const partial = emptyPartial();
  for (let i = 0; i < o.events; i++) addToPartial(partial, { user: hash64(`user-${i % (o.users ?? 10)}`), value: 1 });
  return Buffer.from(encodeEnvelope({
    version: 1,
    sourceId: o.sourceId,
    sequence: o.sequence,
    watermarkMs: o.watermarkMs,
    createdAtMs: o.watermarkMs,
    rows: o.events > 0 ? [{ windowStartMs: o.windowStartMs, windowSizeMs: 60_000, site: o.site, event: 'e', dimensions: [], partial }] : [],
  }));
}

export async function countEvents(ch: ClickHouse, site: string): Promise<number> {
  const rs = await ch.client.query({ query: 'SELECT sum(events) AS n FROM agg_minute WHERE site = {site:String}', query_params: { site }, format: 'JSONEachRow' });
  const [row] = await rs.json<{ n: number | string | null }>();
  return Number(row?.n ?? 0);
}

export type { RunningAggregator };
