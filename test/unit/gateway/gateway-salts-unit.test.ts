import { describe, expect, it } from 'vitest';
import { createGatewayApp } from '../../../core/gateway/app.ts';
import type { Logger } from '../../../core/log.ts';
import type { SaltLookup, SaltProvider } from '../../../shared/salts.ts';
import { saltRequestBody, signGatewayRequest, type GatewayKind } from '../../../schemas/gateway-signature.ts';

// GET /v1/salts/{epoch} of the gateway app, in-process, with a fake salt store.
const SECRET = 'unit-gateway-salts-secret-0123456789abcdef';
const DAY = 86_400_000;
const EPOCH = 20_400;
const T0 = EPOCH * DAY + 3_600_000;
const SALT = Uint8Array.from({ length: 32 }, (_, i) => 200 - i);

function setup(o: { salts?: 'none' } = {}) {
  const clock = { now: T0 };
  const store = {
    epochMs: DAY,
    answer: { kind: 'ok', salt: SALT, usableUntilMs: (EPOCH + 2) * DAY } as SaltLookup,
    lookups: [] as number[],
    async saltFor(epoch: number): Promise<SaltLookup> {
      store.lookups.push(epoch);
      return store.answer;
    },
  } satisfies SaltProvider & Record<string, unknown>;
  const lines: Array<Record<string, unknown>> = [];
  const record = (fields: Record<string, unknown>): void => void lines.push(fields);
  const logger = { info: record, warn: record, error: record, debug: record, child: () => logger } as unknown as Logger;
  const app = createGatewayApp({
    keys: new Map([['edge-a', SECRET]]),
    producer: { sendPartials: async () => {}, sendRejected: async () => {} },
    logger,
    now: () => clock.now,
    ...(o.salts === 'none' ? {} : { salts: store }),
  });
  return { app, store, clock, lines };
}

async function get(
  app: ReturnType<typeof setup>['app'],
  o: { epoch?: number | string; epochMs?: number | string; signEpoch?: number; signEpochMs?: number; kind?: GatewayKind; secret?: string; nonce?: string; timestampMs?: number; unsigned?: boolean } = {},
): Promise<Response> {
  const epoch = o.epoch ?? EPOCH;
  const epochMs = o.epochMs ?? DAY;
  const body = saltRequestBody(o.signEpoch ?? Number(epoch), o.signEpochMs ?? Number(epochMs));
  const headers = o.unsigned ? {} : await signGatewayRequest({ kind: o.kind ?? 'salts', edgeId: 'edge-a', secret: o.secret ?? SECRET, body, timestampMs: o.timestampMs ?? T0, ...(o.nonce ? { nonce: o.nonce } : {}) });
  return app.request(`/v1/salts/${epoch}?epochMs=${epochMs}`, { headers });
}

const error = async (res: Response): Promise<{ code: string; message: string }> => ((await res.json()) as { error: { code: string; message: string } }).error;

describe('gateway GET /v1/salts/{epoch}', () => {
  it('serves the store salt of the epoch (base64, not cacheable) to a signed request', async () => {
    const { app, store, lines } = setup();
    const res = await get(app);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { epoch: number; epochMs: number; salt: string; usableUntilMs: number };
    expect(body).toEqual({ epoch: EPOCH, epochMs: DAY, salt: Buffer.from(SALT).toString('base64'), usableUntilMs: (EPOCH + 2) * DAY });
    expect(new Uint8Array(Buffer.from(body.salt, 'base64'))).toEqual(SALT);
    expect(store.lookups).toEqual([EPOCH]);
    // Audited by edge and epoch; the salt itself is never logged.
    expect(lines).toContainEqual({ event: 'salt_served', edge_id: 'edge-a', epoch: EPOCH });
    expect(JSON.stringify(lines)).not.toContain(body.salt);
  });

  it('requires a valid signature over this epoch and epoch length, for the salts endpoint', async () => {
    const { app, store } = setup();
    expect(await error(await get(app, { unsigned: true }))).toMatchObject({ code: 'missing_signature' });
    const wrongKey = await get(app, { secret: 'another-secret-0123456789abcdef0123456789' });
    expect(wrongKey.status).toBe(401);
    expect(await error(wrongKey)).toMatchObject({ code: 'unauthorized' });
    // Signed for another epoch, another epoch length, or another endpoint: refused.
    expect(await error(await get(app, { signEpoch: EPOCH - 1 }))).toMatchObject({ code: 'unauthorized' });
    expect(await error(await get(app, { signEpochMs: 3_600_000 }))).toMatchObject({ code: 'unauthorized' });
    expect(await error(await get(app, { kind: 'partials' }))).toMatchObject({ code: 'unauthorized' });
    expect(await error(await get(app, { timestampMs: T0 - 6 * 60_000 }))).toMatchObject({ code: 'stale_timestamp' });
    expect(store.lookups).toEqual([]);
  });

  it('refuses a replayed nonce', async () => {
    const { app, store } = setup();
    const nonce = 'salt-nonce-0123456789abcdef';
    expect((await get(app, { nonce })).status).toBe(200);
    const replay = await get(app, { nonce });
    expect(replay.status).toBe(401);
    expect(await error(replay)).toMatchObject({ code: 'replayed_nonce' });
    expect(store.lookups).toEqual([EPOCH]);
  });

  it('answers 410 for an epoch the store calls expired', async () => {
    const { app, store } = setup();
    store.answer = { kind: 'expired' };
    const res = await get(app, { epoch: EPOCH - 2 });
    expect(res.status).toBe(410);
    expect(await error(res)).toMatchObject({ code: 'salt_expired' });
    expect(store.lookups).toEqual([EPOCH - 2]);
  });

  it('answers 503 with Retry-After when the store is unavailable, without its internal reason', async () => {
    const { app, store, lines } = setup();
    store.answer = { kind: 'unavailable', reason: 'salt store unreachable: connect ECONNREFUSED 10.0.0.7:8123' };
    const res = await get(app);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    const e = await error(res);
    expect(e.code).toBe('salt_store_unavailable');
    expect(e.message).not.toContain('10.0.0.7');
    expect(lines).toContainEqual(expect.objectContaining({ event: 'salt_store_unavailable', reason: expect.stringContaining('ECONNREFUSED') }));
  });

  it("answers 409 when the edge's SALT_EPOCH_MS differs from the gateway's, naming both", async () => {
    const { app, store } = setup();
    const res = await get(app, { epoch: EPOCH * 24, epochMs: 3_600_000 });
    expect(res.status).toBe(409);
    const e = await error(res);
    expect(e.code).toBe('epoch_ms_mismatch');
    expect(e.message).toContain('SALT_EPOCH_MS=3600000');
    expect(e.message).toContain('SALT_EPOCH_MS=86400000');
    expect(store.lookups).toEqual([]);
  });

  it('answers 400 to a malformed request and 404 when it serves no salts', async () => {
    const { app } = setup();
    expect(await error(await get(app, { epoch: 'abc', signEpoch: 0 }))).toMatchObject({ code: 'invalid_salt_request' });
    const noMs = await app.request(`/v1/salts/${EPOCH}`);
    expect(noMs.status).toBe(400);
    expect(await error(noMs)).toMatchObject({ code: 'invalid_salt_request' });
    const none = setup({ salts: 'none' });
    const res = await get(none.app);
    expect(res.status).toBe(404);
    expect(await error(res)).toMatchObject({ code: 'salts_not_served' });
    expect(await (await none.app.request('/health')).json()).toMatchObject({ servesSalts: false });
  });
});
