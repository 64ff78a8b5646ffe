import { describe, expect, it } from 'vitest';
import { decodeEnvelope, emptyPartial, type PartialRow } from '../../../shared/algebra/index.ts';
import { parseGatewayClientConfig } from '../../../edge/gateway-config.ts';
import { sealEnvelopes } from '../../../edge/worker/seal.ts';
import { shardIndex } from '../../../edge/worker/shard-routing.ts';
import { parseWorkerConfig } from '../../../edge/worker/worker-config.ts';

const KEY = 'k'.repeat(40);

describe('Workers edge configuration', () => {
  it('reads DO_SHARDS, HEARTBEAT_TAIL_MS and the gateway settings next to the edge settings', () => {
    const r = parseWorkerConfig({ TRIBUTARY_ENV: 'dev', GATEWAY_URL: 'https://gw.example.com/', GATEWAY_SIGNING_KEY: KEY, EDGE_ID: 'workers-prod', DO_SHARDS: '16' });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config).toMatchObject({ shards: 16, heartbeatTailMs: 120_000, gateway: { url: 'https://gw.example.com', edgeId: 'workers-prod', secret: KEY } });
  });

  it('reports every bad value, never the secret', () => {
    const r = parseWorkerConfig({ TRIBUTARY_ENV: 'production', SALT_SOURCE: 'static', GATEWAY_URL: 'http://gw.example.com', GATEWAY_SIGNING_KEY: 'too-short-secret', DO_SHARDS: '0', EDGE_ID: 'bad id' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const text = r.errors.join('\n');
    for (const name of ['TRIBUTARY_WRITE_KEYS', 'PSEUDONYM_SALT', 'GATEWAY_URL', 'GATEWAY_SIGNING_KEY', 'DO_SHARDS', 'EDGE_ID']) expect(text).toContain(name);
    expect(text).not.toContain('too-short-secret');
  });

  it('takes salts from the gateway by default, without PSEUDONYM_SALT; static still needs it', () => {
    const production = { TRIBUTARY_ENV: 'production', TRIBUTARY_WRITE_KEYS: 'wk_a:a', GATEWAY_URL: 'https://gw.example.com', GATEWAY_SIGNING_KEY: KEY };
    const byDefault = parseWorkerConfig(production);
    expect(byDefault.ok && byDefault.config.saltSource).toBe('gateway');
    const explicit = parseWorkerConfig({ ...production, SALT_SOURCE: 'gateway' });
    expect(explicit.ok && explicit.config.saltSource).toBe('gateway');
    const staticWithout = parseWorkerConfig({ ...production, SALT_SOURCE: 'static' });
    expect(staticWithout.ok ? [] : staticWithout.errors).toEqual([expect.stringContaining('PSEUDONYM_SALT is required')]);
    const staticWith = parseWorkerConfig({ ...production, SALT_SOURCE: 'static', PSEUDONYM_SALT: 'p'.repeat(32) });
    expect(staticWith.ok && staticWith.config.saltSource).toBe('static');
    // clickhouse is for Node processes only: the Worker cannot reach the store.
    const clickhouse = parseWorkerConfig({ ...production, SALT_SOURCE: 'clickhouse' });
    expect(clickhouse.ok ? [] : clickhouse.errors).toEqual([expect.stringMatching(/^SALT_SOURCE="clickhouse" is not valid here: use "gateway" .* or "static"/)]);
  });

  it('allows plain http to the gateway only in dev or on loopback', () => {
    expect(parseGatewayClientConfig({ GATEWAY_URL: 'http://127.0.0.1:8082', GATEWAY_SIGNING_KEY: KEY }, { defaultEdgeId: 'deno' }).ok).toBe(true);
    expect(parseGatewayClientConfig({ GATEWAY_URL: 'http://gw.internal:8082', GATEWAY_SIGNING_KEY: KEY }, { defaultEdgeId: 'deno' }).ok).toBe(false);
    expect(parseGatewayClientConfig({ GATEWAY_URL: 'http://gw.internal:8082', GATEWAY_SIGNING_KEY: KEY, TRIBUTARY_ENV: 'dev' }, { defaultEdgeId: 'deno' }).ok).toBe(true);
  });
});

describe('shard routing', () => {
  it('sends a messageId to the same shard every time, and spreads messageIds over all shards', () => {
    const at = (messageId: string): number => shardIndex({ site: 'demo', messageId, user: undefined, eventTimeMs: 0 }, 8);
    expect(at('m-1')).toBe(at('m-1'));
    const used = new Set(Array.from({ length: 400 }, (_, i) => at(`m-${i}`)));
    expect(used.size).toBe(8);
  });
});

describe('sealEnvelopes', () => {
  const row = (i: number): PartialRow => ({ windowStartMs: 60_000 * i, windowSizeMs: 60_000, site: 's', event: 'e', dimensions: [['path', `/${i}`]], partial: emptyPartial() });
  const base = { sourceId: 'do-x-0', firstSequence: 100, previousWatermarkMs: 1000, watermarkMs: 2000, createdAtMs: 3000, maxEnvelopeBytes: 900_000 };

  it('gives consecutive sequences, at most flushMaxRows rows each, and the new watermark only to the last', () => {
    const sealed = sealEnvelopes({ ...base, rows: Array.from({ length: 5 }, (_, i) => row(i)), flushMaxRows: 2 });
    const envelopes = sealed.map((s) => {
      const d = decodeEnvelope(s.bytes);
      if (!d.ok) throw new Error(d.error.message);
      return d.value;
    });
    expect(envelopes.map((e) => [e.sequence, e.rows.length, e.watermarkMs])).toEqual([[100, 2, 1000], [101, 2, 1000], [102, 1, 2000]]);
  });

  it('seals an empty heartbeat when there are no rows, and halves envelopes over the byte limit', () => {
    expect(sealEnvelopes({ ...base, rows: [], flushMaxRows: 10 }).map((s) => s.rows)).toEqual([0]);
    const split = sealEnvelopes({ ...base, rows: Array.from({ length: 8 }, (_, i) => row(i)), flushMaxRows: 100, maxEnvelopeBytes: 150 });
    expect(split.length).toBeGreaterThan(1);
    expect(split.reduce((n, s) => n + s.rows, 0)).toBe(8);
    expect(split.map((s) => s.sequence)).toEqual(split.map((_, i) => 100 + i));
  });
});
