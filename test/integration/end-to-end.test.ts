import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCoreConfig } from '../../core/config/core-config.ts';
import { silentLogger } from '../../core/log.ts';
import { startPipeline, type Pipeline } from '../../core/pipeline.ts';
import { queryTotals } from '../../core/query/queries.ts';
import { testKafkaBrokers, uniqueName } from './setup/kafka-test-env.ts';
import { tempDedupDir } from './setup/dedup-dir.ts';

// The whole path with real components: HTTP -> Node edge -> Kafka broker -> aggregator -> chdb.
const WINDOW_MS = 1000;
const USERS = 200;
const EVENTS = 1000;
const READ_KEY = 'rk_e2e_0123456789abcdef0123';

describe.each(['source', 'cell'] as const)('one event travelling the whole path, PARTIALS_ROUTING=%s', (routing) => {
  let pipeline: Pipeline;
  const partialsTopic = uniqueName('partials');

  beforeAll(async () => {
    const env = {
      PARTIALS_ROUTING: routing,
      CLICKHOUSE_PATH: mkdtempSync(join(tmpdir(), 'trib-e2e-')),
      PORT: '0',
      QUERY_PORT: '0',
      QUERY_READ_KEYS: `${READ_KEY}:e2e-site`,
      PARTIALS_TOPIC: partialsTopic,
      REJECTED_TOPIC: uniqueName('rejected'),
      DEAD_LETTER_TOPIC: uniqueName('dlq'),
      AGGREGATOR_GROUP: uniqueName('aggregator'),
      WINDOW_SIZE_MS: String(WINDOW_MS),
      ALLOWED_LATENESS_MS: '0',
      EMIT_INTERVAL_MS: '200',
      IDLE_TIMEOUT_MS: '10000',
    };
    const edgeEnv = {
      TRIBUTARY_WRITE_KEYS: 'wk_e2e:e2e-site',
      PSEUDONYM_SALT: 'e2e-test-salt-0123456789abcdef',
      WINDOW_SIZE_MS: String(WINDOW_MS),
      FLUSH_INTERVAL_MS: '100',
      HEARTBEAT_MS: '200',
      WATERMARK_DELAY_MS: '100',
      DEDUP_DIR: tempDedupDir(),
    };
    const parsed = parseCoreConfig(env);
    if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
    pipeline = await startPipeline(parsed.config, edgeEnv, testKafkaBrokers(), silentLogger());
  });

  afterAll(async () => {
    await pipeline?.stop();
  });

  it('counts 1,000 tracked events and their unique users in ClickHouse after the window closes', async () => {
    const startedAt = Date.now();
    const auth = `Basic ${btoa('wk_e2e:')}`;
    let lastSentAt = '';
    for (let b = 0; b < EVENTS / 100; b++) {
      const sentAt = new Date().toISOString();
      lastSentAt = sentAt;
      const batch = Array.from({ length: 100 }, (_, i) => {
        const n = b * 100 + i;
        return { type: 'track', event: 'signup', userId: `user-${n % USERS}`, messageId: `msg-${n}`, timestamp: sentAt, properties: { value: n % 10 } };
      });
      const res = await fetch(`${pipeline.edgeUrl}/v1/batch`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ batch, sentAt }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { accepted: number };
      expect(body.accepted).toBe(100);
    }
    // An SDK retry (same messageId, same timestamp) must not be counted twice.
    const retry = await fetch(`${pipeline.edgeUrl}/v1/track`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'track', event: 'signup', userId: `user-${999 % USERS}`, messageId: 'msg-999', timestamp: lastSentAt, sentAt: lastSentAt, properties: { value: 9 } }),
    });
    expect(retry.status).toBe(200);

    // Wait until every window that received events is final and the numbers are in.
    const deadline = Date.now() + 60_000;
    let points: Array<{ count: number; uniques: number; status: string }> = [];
    while (Date.now() < deadline) {
      const url = `${pipeline.queryUrl}/api/v1/timeseries?site=e2e-site&event=signup&from=${startedAt - 5000}&to=${Date.now() + 5000}&granularity=minute`;
      const res = await fetch(url, { headers: { authorization: `Bearer ${READ_KEY}` } });
      expect(res.status).toBe(200);
      points = ((await res.json()) as { points: typeof points }).points;
      const total = points.reduce((s, p) => s + p.count, 0);
      if (total === EVENTS && points.every((p) => p.status === 'final')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(points.reduce((s, p) => s + p.count, 0)).toBe(EVENTS);
    expect(points.every((p) => p.status === 'final')).toBe(true);

    // Unique users over the whole range: HLL registers merged in SQL across windows.
    const totals = await queryTotals(pipeline.clickhouse.client, { site: 'e2e-site', event: 'signup', fromMs: startedAt - 5000, toMs: Date.now() + 5000 });
    expect(totals.events).toBe(EVENTS);
    expect(Math.abs(totals.uniques - USERS)).toBeLessThanOrEqual(USERS * 0.02);

    // The hour rollup (materialized view) agrees with the minute table.
    const hour = await queryTotals(pipeline.clickhouse.client, { site: 'e2e-site', event: 'signup', fromMs: startedAt - 3_600_000, toMs: Date.now() + 3_600_000, granularity: 'hour' });
    expect(hour).toEqual({ events: EVENTS, uniques: totals.uniques });

    // Cell routing splits every envelope across all partitions (empty parts carry the watermark).
    const admin = new Kafka({ clientId: 'e2e-check', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(partialsTopic);
    await admin.disconnect();
    expect(offsets.filter((o) => o.high !== '0').length).toBe(routing === 'cell' ? offsets.length : 1);
  });
});
