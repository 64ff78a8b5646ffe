import { describe, expect, it } from 'vitest';
import { RecordingPipelineSink } from '../../support/fake-pipeline-sink.ts';
import { emptyPartial, encodeEnvelope, type PartialEnvelope } from '../../../shared/algebra/index.ts';
import { parseCoreConfig } from '../../../core/config/core-config.ts';
import { createGatewayApp, SEQUENCE_MAX_LEAD_MS } from '../../../core/gateway/app.ts';
import { createNonceCache } from '../../../core/gateway/nonce-cache.ts';
import { createByteBudget } from '../../../core/gateway/read-body.ts';
import { createRefusalLog } from '../../../core/gateway/refusal-log.ts';
import { silentLogger, type Logger } from '../../../core/log.ts';
import { shardName, shardSourceId } from '../../../edge/worker/shard-routing.ts';
import { GATEWAY_MAX_AGE_MS, GATEWAY_MAX_FUTURE_MS, signGatewayRequest, type GatewayKind } from '../../../schemas/gateway-signature.ts';
import { denoSourceId, sourceBelongsTo } from '../../../schemas/gateway-sources.ts';

// Issue #10, findings 1, 2, 3 and 10 (gateway part): an attacker holding one valid edge key (edge1).
const KEY1 = 'edge-one-secret-0123456789abcdef0123';
const KEY2 = 'edge-two-secret-0123456789abcdef0123';
const T0 = Date.parse('2026-11-01T12:00:00Z');

function setup(o: { edgeSites?: boolean; capacityPerEdge?: number; budgetBytes?: number; logger?: Logger } = {}) {
  const clock = { now: T0 };
  const producer = new RecordingPipelineSink();
  const app = createGatewayApp({
    keys: new Map([['edge1', KEY1], ['edge2', KEY2]]),
    ...(o.edgeSites === false ? {} : { edgeSites: new Map([['edge1', new Set(['site1'])], ['edge2', new Set(['site2'])]]) }),
    producer,
    logger: o.logger ?? silentLogger(),
    now: () => clock.now,
    ...(o.capacityPerEdge ? { nonces: createNonceCache({ capacityPerEdge: o.capacityPerEdge, ttlMs: GATEWAY_MAX_AGE_MS }) } : {}),
    ...(o.budgetBytes ? { budget: createByteBudget(o.budgetBytes) } : {}),
  });
  return { app, producer, clock };
}

function envelope(over: Partial<PartialEnvelope> & { sourceId: string; sequence: number }, site = 'site1', count = 3): Uint8Array {
  const partial = emptyPartial();
  partial.count = count;
  return encodeEnvelope({ version: 1, watermarkMs: T0 - 1000, createdAtMs: T0, rows: [{ windowStartMs: T0, windowSizeMs: 60_000, site, event: 'signup', dimensions: [], partial }], ...over });
}

async function post(app: ReturnType<typeof setup>['app'], body: Uint8Array, o: { edge: 'edge1' | 'edge2'; kind?: 'partials' | 'rejected'; timestampMs?: number }): Promise<Response> {
  const kind: GatewayKind = o.kind ?? 'partials';
  const headers = await signGatewayRequest({ kind, edgeId: o.edge, secret: o.edge === 'edge1' ? KEY1 : KEY2, body, timestampMs: o.timestampMs ?? T0 });
  return app.request(`/v1/${kind}`, { method: 'POST', headers, body: body as Uint8Array<ArrayBuffer> });
}

const json = async (res: Response): Promise<{ error?: { code: string; message: string }; ok?: boolean; duplicate?: boolean }> => (await res.json()) as never;

describe('edges are principals: source ids (finding 1)', () => {
  it('refuses an envelope signed by edge1 under edge2 source id, and edge2 envelopes still go through', async () => {
    const { app, producer } = setup();
    const forged = await post(app, envelope({ sourceId: 'do-edge2-0', sequence: 9e15 }), { edge: 'edge1' });
    expect(forged.status).toBe(403);
    expect((await json(forged)).error?.code).toBe('source_not_allowed');
    const genuine = await post(app, envelope({ sourceId: 'do-edge2-0', sequence: T0 }, 'site2'), { edge: 'edge2' });
    expect(genuine.status).toBe(200);
    expect(await json(genuine)).toEqual({ ok: true, duplicate: false });
    const next = await post(app, envelope({ sourceId: 'do-edge2-0', sequence: T0 + 1 }, 'site2'), { edge: 'edge2' });
    expect(await json(next)).toEqual({ ok: true, duplicate: false });
    expect(producer.partials.map((m) => m.key)).toEqual(['do-edge2-0', 'do-edge2-0']);
  });

  it('binds the source forms each edge runtime produces, and no other edge can claim them', () => {
    expect(sourceBelongsTo('workers-prod', shardSourceId(shardName('workers-prod', 15)))).toBe(true);
    expect(sourceBelongsTo('deno-eu', denoSourceId('deno-eu', '1a2b3c4d'))).toBe(true);
    // Edge ids may contain "-": "a" must not claim a-b's shards, nor a-b claim a's.
    expect(sourceBelongsTo('a', shardSourceId(shardName('a-b', 0)))).toBe(false);
    expect(sourceBelongsTo('a-b', shardSourceId(shardName('a', 0)))).toBe(false);
    expect(sourceBelongsTo('do-x', denoSourceId('x', 'abcdef01'))).toBe(false);
    expect(sourceBelongsTo('x', 'deno-do-x-12345678')).toBe(false);
    expect(sourceBelongsTo('edge1', 'edge1-abcdef01')).toBe(false);
    expect(sourceBelongsTo('edge1', 'do-edge1-')).toBe(false);
    expect(sourceBelongsTo('edge1', 'do-edge1-1x')).toBe(false);
  });

  it('refuses a sequence more than a day ahead of the clock on the edge own source', async () => {
    const { app, producer } = setup();
    const far = await post(app, envelope({ sourceId: 'do-edge1-0', sequence: T0 + SEQUENCE_MAX_LEAD_MS + 1 }), { edge: 'edge1' });
    expect(far.status).toBe(400);
    expect((await json(far)).error?.code).toBe('implausible_sequence');
    expect((await post(app, envelope({ sourceId: 'do-edge1-0', sequence: T0 }), { edge: 'edge1' })).status).toBe(200);
    expect(producer.partials).toHaveLength(1);
  });
});

describe('edges are principals: sites (finding 1)', () => {
  it('refuses rows and rejected records of a site the edge may not write, with 403', async () => {
    const { app, producer } = setup();
    const rows = await post(app, envelope({ sourceId: 'do-edge1-0', sequence: T0 }, 'site2', 1_000_000_000), { edge: 'edge1' });
    expect(rows.status).toBe(403);
    expect((await json(rows)).error?.code).toBe('site_not_allowed');
    const records = new TextEncoder().encode(JSON.stringify([{ site: 'site1', errors: [] }, { site: 'site2', errors: [] }]));
    const rejected = await post(app, records, { edge: 'edge1', kind: 'rejected' });
    expect(rejected.status).toBe(403);
    expect((await json(rejected)).error?.code).toBe('site_not_allowed');
    expect(producer.partials).toHaveLength(0);
    expect(producer.rejected).toHaveLength(0);
    expect((await post(app, envelope({ sourceId: 'do-edge1-0', sequence: T0 }, 'site1'), { edge: 'edge1' })).status).toBe(200);
  });

  it('without GATEWAY_EDGE_SITES every edge writes every site, but sources stay bound', async () => {
    const { app } = setup({ edgeSites: false });
    expect((await post(app, envelope({ sourceId: 'do-edge1-0', sequence: T0 }, 'site2'), { edge: 'edge1' })).status).toBe(200);
    expect((await post(app, envelope({ sourceId: 'do-edge2-0', sequence: T0 }, 'site2'), { edge: 'edge1' })).status).toBe(403);
  });

  it('parses GATEWAY_EDGE_SITES: every edge listed, only edges with a key, valid sites', () => {
    const keys = 'edge1:0123456789abcdef0123456789abcdef,edge2:0123456789abcdef0123456789abcdef';
    const r = parseCoreConfig({ GATEWAY_SIGNING_KEYS: keys, GATEWAY_EDGE_SITES: 'edge1:shop+blog, edge2:*' });
    expect(r.ok && r.config.gateway.edgeSites).toEqual(new Map<string, unknown>([['edge1', new Set(['shop', 'blog'])], ['edge2', '*']]));
    expect(parseCoreConfig({ GATEWAY_SIGNING_KEYS: keys }).ok && parseCoreConfig({ GATEWAY_SIGNING_KEYS: keys })).toMatchObject({ config: { gateway: { edgeSites: undefined } } });
    const bad = parseCoreConfig({ GATEWAY_SIGNING_KEYS: keys, GATEWAY_EDGE_SITES: 'edge1:shop,edge3:*,edge1:blog,edge1 x' });
    expect(bad.ok ? [] : bad.errors).toEqual([
      expect.stringContaining('entry 2 names edge "edge3", which has no key'),
      expect.stringContaining('entry 3 repeats edge "edge1"'),
      expect.stringContaining("entry 4 has no ':'"),
      expect.stringContaining('does not list edge "edge2"'),
    ]);
  });
});

describe('replay protection per edge (finding 2)', () => {
  it('refuses a timestamp more than GATEWAY_MAX_FUTURE_MS ahead', async () => {
    const { app } = setup();
    const ahead = await post(app, envelope({ sourceId: 'do-edge1-0', sequence: T0 }), { edge: 'edge1', timestampMs: T0 + 290_000 });
    expect(ahead.status).toBe(401);
    expect((await json(ahead)).error?.code).toBe('stale_timestamp');
    expect((await post(app, envelope({ sourceId: 'do-edge1-0', sequence: T0 }), { edge: 'edge1', timestampMs: T0 + GATEWAY_MAX_FUTURE_MS })).status).toBe(200);
  });

  it('edge1 filling its replay window with future timestamps never refuses edge2 fresh requests', async () => {
    const { app } = setup({ capacityPerEdge: 20 });
    for (let i = 0; i < 60; i++) {
      const r = await post(app, envelope({ sourceId: 'do-edge1-0', sequence: T0 + i }), { edge: 'edge1', timestampMs: T0 + GATEWAY_MAX_FUTURE_MS - 100 + i });
      expect(r.status).toBe(200);
    }
    // edge1's floor is now near T0 + 10 s: its own requests signed before that are refused...
    expect((await json(await post(app, envelope({ sourceId: 'do-edge1-0', sequence: T0 + 100 }), { edge: 'edge1' }))).error?.code).toBe('replayed_nonce');
    // ...edge2's are not.
    const fresh = await post(app, envelope({ sourceId: 'do-edge2-0', sequence: T0 }, 'site2'), { edge: 'edge2' });
    expect(fresh.status).toBe(200);
  });
});

describe('authenticate before buffering (finding 3)', () => {
  /** A body that records how many chunks were pulled and never ends. */
  function stalledBody(): { stream: ReadableStream<Uint8Array>; pulls: () => number } {
    let pulls = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls++;
        if (pulls < 4) controller.enqueue(new Uint8Array(64 * 1024));
        return new Promise(() => {});
      },
    }, { highWaterMark: 0 });
    return { stream, pulls: () => pulls };
  }

  it('answers an unsigned, an unknown-edge and a stale request 401 without reading the body', async () => {
    const { app } = setup();
    for (const headers of [
      {},
      await signGatewayRequest({ kind: 'partials', edgeId: 'edge9', secret: KEY1, body: new Uint8Array(0), timestampMs: T0 }),
      await signGatewayRequest({ kind: 'partials', edgeId: 'edge1', secret: KEY1, body: new Uint8Array(0), timestampMs: T0 - GATEWAY_MAX_AGE_MS - 1 }),
    ]) {
      const body = stalledBody();
      const res = await app.request('/v1/partials', { method: 'POST', headers, body: body.stream, duplex: 'half' } as RequestInit);
      expect(res.status).toBe(401);
      expect(body.pulls()).toBe(0);
    }
  });

  it('answers 503 + Retry-After once the bodies in flight reach the budget, and releases it after', async () => {
    const { app, producer } = setup({ budgetBytes: 150_000 });
    let open!: () => void;
    producer.gate = new Promise((r) => (open = r));
    const records = (n: number): Uint8Array => new TextEncoder().encode(JSON.stringify([{ site: 'site1', message: 'x'.repeat(n) }]));
    // Held until Kafka answers: its 100 kB stay in the budget.
    const first = post(app, records(100_000), { edge: 'edge1', kind: 'rejected' });
    await new Promise((r) => setTimeout(r, 20));
    const second = await post(app, records(100_000), { edge: 'edge1', kind: 'rejected' });
    expect([second.status, second.headers.get('retry-after'), (await json(second)).error?.code]).toEqual([503, '5', 'overloaded']);
    open();
    expect((await first).status).toBe(200);
    expect((await post(app, records(100_000), { edge: 'edge1', kind: 'rejected' })).status).toBe(200);
  });
});

describe('uniform answers and bounded logs (finding 10)', () => {
  it('answers unknown edge and bad signature alike; the log says which, once per interval and reason', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = { info: () => {}, warn: (l: Record<string, unknown>) => lines.push(l), error: () => {}, debug: () => {} } as unknown as Logger;
    const { app } = setup({ logger });
    const body = envelope({ sourceId: 'do-edge1-0', sequence: T0 });
    const unknown = await app.request('/v1/partials', { method: 'POST', headers: await signGatewayRequest({ kind: 'partials', edgeId: 'edge9', secret: KEY1, body, timestampMs: T0 }), body: body as Uint8Array<ArrayBuffer> });
    const wrong = await app.request('/v1/partials', { method: 'POST', headers: await signGatewayRequest({ kind: 'partials', edgeId: 'edge1', secret: KEY2, body, timestampMs: T0 }), body: body as Uint8Array<ArrayBuffer> });
    const a = await json(unknown);
    const b = await json(wrong);
    expect([unknown.status, wrong.status]).toEqual([401, 401]);
    expect(a).toEqual(b);
    expect(a.error?.code).toBe('unauthorized');
    for (let i = 0; i < 1000; i++) await app.request('/v1/partials', { method: 'POST', headers: await signGatewayRequest({ kind: 'partials', edgeId: 'edge1', secret: KEY2, body, timestampMs: T0 }), body: body as Uint8Array<ArrayBuffer> });
    expect(lines.map((l) => [l.event, l.reason])).toEqual([
      ['gateway_request_refused', 'unknown_edge'],
      ['gateway_request_refused', 'bad_signature'],
    ]);
    expect(JSON.stringify(lines)).not.toContain('edge9');
  });

  it('sums refusals into one line per interval', () => {
    const lines: Array<Record<string, unknown>> = [];
    const clock = { now: 0 };
    const logger = { warn: (l: Record<string, unknown>) => lines.push(l) } as unknown as Logger;
    const log = createRefusalLog({ logger, intervalMs: 10_000, now: () => clock.now });
    for (let i = 0; i < 500; i++) log.refused('bad_signature', 'edge1');
    log.refused('unknown_edge', undefined);
    clock.now = 10_000;
    log.refused('bad_signature', 'edge1');
    expect(lines.filter((l) => l.event === 'gateway_requests_refused')).toEqual([
      { event: 'gateway_requests_refused', total: 501, by_reason: { bad_signature: 500, unknown_edge: 1 }, by_edge: { edge1: 500 }, interval_ms: 10_000 },
    ]);
    expect(lines).toHaveLength(4);
  });

  it('answers other methods on the gateway routes with 405 and Allow', async () => {
    const { app } = setup();
    for (const [method, path, allow] of [['GET', '/v1/partials', 'POST'], ['PUT', '/v1/rejected', 'POST'], ['POST', '/v1/salts/1', 'GET, HEAD'], ['DELETE', '/health', 'GET, HEAD']] as const) {
      const res = await app.request(path, { method });
      expect([method, path, res.status, res.headers.get('allow')]).toEqual([method, path, 405, allow]);
      expect((await json(res)).error?.code).toBe('method_not_allowed');
    }
    expect((await app.request('/nope')).status).toBe(404);
  });
});
