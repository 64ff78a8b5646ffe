import { describe, expect, it } from 'vitest';
import { RecordingPipelineSink } from '../../support/fake-pipeline-sink.ts';
import { decodeEnvelope, emptyPartial, encodeEnvelope, type PartialEnvelope } from '../../../shared/algebra/index.ts';
import { createGatewayApp } from '../../../core/gateway/app.ts';
import { silentLogger } from '../../../core/log.ts';
import { GATEWAY_HEADERS, signGatewayRequest, type GatewayKind } from '../../../schemas/gateway-signature.ts';

const SECRET = 'unit-gateway-secret-0123456789abcdef';
const T0 = Date.parse('2026-11-01T12:00:00Z');

function setup() {
  const clock = { now: T0 };
  const producer = new RecordingPipelineSink();
  const app = createGatewayApp({ keys: new Map([['edge-a', SECRET]]), producer, logger: silentLogger(), now: () => clock.now });
  return { app, producer, clock };
}

function envelope(sequence: number, over: Partial<PartialEnvelope> = {}): Uint8Array {
  const partial = emptyPartial();
  partial.count = 3;
  return encodeEnvelope({
    version: 1,
    sourceId: 'do-edge-a-0',
    sequence,
    watermarkMs: T0 - 1000,
    createdAtMs: T0,
    rows: [{ windowStartMs: T0, windowSizeMs: 60_000, site: 'demo', event: 'signup', dimensions: [['path', '/']], partial }],
    ...over,
  });
}

async function signed(body: Uint8Array, o: { kind?: GatewayKind; secret?: string; edgeId?: string; timestampMs?: number; nonce?: string } = {}): Promise<RequestInit> {
  const headers = await signGatewayRequest({ kind: o.kind ?? 'partials', edgeId: o.edgeId ?? 'edge-a', secret: o.secret ?? SECRET, body, timestampMs: o.timestampMs ?? T0, ...(o.nonce ? { nonce: o.nonce } : {}) });
  return { method: 'POST', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: body as Uint8Array<ArrayBuffer> };
}

const errorCode = async (res: Response): Promise<unknown> => ((await res.json()) as { error: { code: string } }).error.code;

describe('gateway app', () => {
  it('produces a signed envelope keyed by sourceId and answers 200 after the producer resolved', async () => {
    const { app, producer } = setup();
    const body = envelope(10);
    const res = await app.request('/v1/partials', await signed(body));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, duplicate: false });
    expect(producer.partials).toHaveLength(1);
    expect(producer.partials[0]?.key).toBe('do-edge-a-0');
    expect(producer.partials[0]?.value).toEqual(body);
    const d = decodeEnvelope(producer.partials[0]!.value);
    expect(d.ok && d.value.sequence).toBe(10);
  });

  it('refuses unsigned, unknown-edge, wrong-key, tampered and stale requests with 401 and a typed code', async () => {
    const { app, producer, clock } = setup();
    const body = envelope(1);
    expect(await errorCode(await app.request('/v1/partials', { method: 'POST', body: body as Uint8Array<ArrayBuffer> }))).toBe('missing_signature');
    expect(await errorCode(await app.request('/v1/partials', await signed(body, { edgeId: 'edge-b' })))).toBe('unauthorized');
    const wrong = await app.request('/v1/partials', await signed(body, { secret: 'another-secret-0123456789abcdef0123' }));
    expect(wrong.status).toBe(401);
    expect(await errorCode(wrong)).toBe('unauthorized');
    const tampered = await signed(body);
    const copy = body.slice();
    copy[copy.length - 1] = (copy[copy.length - 1] ?? 0) ^ 1;
    expect(await errorCode(await app.request('/v1/partials', { ...tampered, body: copy }))).toBe('unauthorized');
    // Signed as `rejected`, sent to `partials`: the kind is part of the signature.
    expect(await errorCode(await app.request('/v1/partials', await signed(body, { kind: 'rejected' })))).toBe('unauthorized');
    const old = await signed(body, { timestampMs: T0 - 60_000 - 1 });
    expect(await errorCode(await app.request('/v1/partials', old))).toBe('stale_timestamp');
    clock.now = T0 + 60_000 + 1;
    expect(await errorCode(await app.request('/v1/partials', await signed(body)))).toBe('stale_timestamp');
    expect(producer.partials).toHaveLength(0);
  });

  it('refuses a replayed nonce with 401', async () => {
    const { app, producer } = setup();
    const init = await signed(envelope(5), { nonce: 'fixed-nonce-0123456789' });
    expect((await app.request('/v1/partials', init)).status).toBe(200);
    const replay = await app.request('/v1/partials', await signed(envelope(5), { nonce: 'fixed-nonce-0123456789' }));
    expect(replay.status).toBe(401);
    expect(await errorCode(replay)).toBe('replayed_nonce');
    expect(producer.partials).toHaveLength(1);
  });

  it('answers 400 with the decoder reason for an undecodable envelope', async () => {
    const { app } = setup();
    const res = await app.request('/v1/partials', await signed(new TextEncoder().encode('not an envelope')));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'undecodable_envelope', reason: 'bad_magic' } });
    const truncated = await app.request('/v1/partials', await signed(envelope(1).slice(0, 12)));
    expect(await truncated.json()).toMatchObject({ error: { code: 'undecodable_envelope', reason: 'truncated' } });
  });

  it('answers a duplicate (sourceId, sequence) with 200 without producing it again', async () => {
    const { app, producer } = setup();
    expect((await app.request('/v1/partials', await signed(envelope(7)))).status).toBe(200);
    const again = await app.request('/v1/partials', await signed(envelope(7)));
    expect(await again.json()).toEqual({ ok: true, duplicate: true });
    const older = await app.request('/v1/partials', await signed(envelope(6)));
    expect(await older.json()).toEqual({ ok: true, duplicate: true });
    expect((await app.request('/v1/partials', await signed(envelope(8)))).status).toBe(200);
    expect(producer.partials.map((m) => decodeEnvelope(m.value)).map((d) => d.ok && d.value.sequence)).toEqual([7, 8]);
  });

  it('lets a retry racing the first attempt wait for it instead of producing twice', async () => {
    const { app, producer } = setup();
    let open!: () => void;
    producer.gate = new Promise((r) => (open = r));
    const first = app.request('/v1/partials', await signed(envelope(20)));
    const second = app.request('/v1/partials', await signed(envelope(20)));
    await new Promise((r) => setTimeout(r, 10));
    open();
    expect((await first).status).toBe(200);
    expect(await (await second).json()).toEqual({ ok: true, duplicate: true });
    expect(producer.partials).toHaveLength(1);
  });

  it('answers 503 + Retry-After when Kafka fails, and produces the same sequence on the retry', async () => {
    const { app, producer } = setup();
    producer.failures = 1;
    const res = await app.request('/v1/partials', await signed(envelope(30)));
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(await errorCode(res)).toBe('kafka_unavailable');
    expect((await app.request('/v1/partials', await signed(envelope(30)))).status).toBe(200);
    expect(producer.partials).toHaveLength(1);
  });

  it('refuses a body over the limit with 413 before verifying it', async () => {
    const producer = new RecordingPipelineSink();
    const app = createGatewayApp({ keys: new Map([['edge-a', SECRET]]), producer, logger: silentLogger(), now: () => T0, maxBodyBytes: 64 });
    const res = await app.request('/v1/partials', await signed(new Uint8Array(100)));
    expect(res.status).toBe(413);
  });

  it('produces the rejected records it was posted (the Kafka sink keys them by site)', async () => {
    const { app, producer } = setup();
    const records = [{ site: 'demo', received_at: '2026-11-01T12:00:00.000Z', index: 1, message_id: 'm', errors: [], event: { type: 'track' } }];
    const res = await app.request('/v1/rejected', await signed(new TextEncoder().encode(JSON.stringify(records)), { kind: 'rejected' }));
    expect(res.status).toBe(200);
    expect(producer.rejected).toEqual(records);
    const bad = await app.request('/v1/rejected', await signed(new TextEncoder().encode('{"site":1}'), { kind: 'rejected' }));
    expect(await errorCode(bad)).toBe('invalid_rejected_records');
  });

  it('names its headers in the 401 message and answers unknown paths with 404 JSON', async () => {
    const { app } = setup();
    const res = await app.request('/v1/partials', { method: 'POST', body: 'x' });
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain(GATEWAY_HEADERS.signature);
    expect((await app.request('/nope')).status).toBe(404);
  });
});
