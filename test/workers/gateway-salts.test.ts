import { createExecutionContext, runDurableObjectAlarm, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createHll, decodeEnvelope, hash64FromHex, hllAdd, hllToRegisters, type PartialRow } from '../../shared/algebra/index.ts';
import { DEV_PSEUDONYM_SALT } from '../../edge/config.ts';
import { createStaticSaltProvider } from '../../shared/salts.ts';
import worker from '../../edge/worker/index.ts';
import { saltRequestBody, verifyGatewayRequest } from '../../schemas/gateway-signature.ts';
import { EDGE_ID, SHARDS, SIGNING_KEY, drainShards, shardStub } from './helpers.ts';

// SALT_SOURCE=gateway inside workerd: the Worker fetches its epoch salt from the gateway (a stub
// on `fetch` that verifies the signature as core/gateway does) and pseudonymizes with it.
const DAY = 86_400_000;
// The wrangler dev vars say "static"; the same bindings with SALT_SOURCE=gateway (a distinct env
// object, so the isolate builds a separate ingest state for it).
const gatewayEnv = { ...env, SALT_SOURCE: 'gateway' } as typeof env;
const saltOf = new Map<number, Uint8Array>();

interface SaltCall {
  epoch: number;
  epochMs: string | null;
  status: number;
}

let saltCalls: SaltCall[] = [];
let rows: PartialRow[] = [];

function stubGateway(): void {
  vi.spyOn(globalThis, 'fetch').mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (url.origin !== 'http://gateway.test') throw new Error(`unexpected fetch to ${request.url}`);
    const salts = /^\/v1\/salts\/(\d+)$/.exec(url.pathname);
    if (salts) {
      const epoch = Number(salts[1]);
      const epochMs = url.searchParams.get('epochMs');
      const verified = await verifyGatewayRequest({ kind: 'salts', headers: request.headers, body: saltRequestBody(epoch, Number(epochMs)), keys: new Map([[EDGE_ID, SIGNING_KEY]]), nowMs: Date.now() });
      const status = !verified.ok ? 401 : epochMs !== String(DAY) ? 409 : 200;
      saltCalls.push({ epoch, epochMs, status });
      if (status !== 200) return Response.json({ error: { code: 'refused' } }, { status });
      if (!saltOf.has(epoch)) saltOf.set(epoch, crypto.getRandomValues(new Uint8Array(32)));
      const salt = btoa(String.fromCharCode(...(saltOf.get(epoch) as Uint8Array)));
      return Response.json({ epoch, epochMs: DAY, salt, usableUntilMs: (epoch + 2) * DAY });
    }
    const bytes = new Uint8Array(await request.arrayBuffer());
    if (url.pathname === '/v1/partials') {
      const d = decodeEnvelope(bytes);
      if (d.ok) rows.push(...d.value.rows);
    }
    return Response.json({ ok: true });
  });
}

/** One track event through the Worker with the gateway-salt bindings; the answer's status. */
async function trackThroughWorker(event: string, userId: string): Promise<number> {
  const ctx = createExecutionContext();
  const request = new Request('http://edge.test/v1/track', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${btoa('wk_demo:')}` },
    body: JSON.stringify({ event, userId, messageId: `${event}-${userId}-${Date.now()}` }),
  });
  const res = await worker.fetch(request as Request<unknown, IncomingRequestCfProperties>, gatewayEnv, ctx);
  await waitOnExecutionContext(ctx);
  return res.status;
}

/** HyperLogLog registers of one user under `salt`: what the row of a single-user event carries. */
async function registersOf(salt: Uint8Array, userId: string): Promise<ReturnType<typeof hllToRegisters>> {
  const key = await crypto.subtle.importKey('raw', salt, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`demo:${userId}`)));
  const hex = Array.from(mac.slice(0, 8), (b) => b.toString(16).padStart(2, '0')).join('');
  const hll = createHll();
  hllAdd(hll, hash64FromHex(hex));
  return hllToRegisters(hll);
}

async function flushedRow(event: string): Promise<PartialRow> {
  for (let i = 0; i < SHARDS; i++) await runDurableObjectAlarm(shardStub(i));
  const row = rows.find((r) => r.event === event);
  if (row === undefined) throw new Error(`no row for ${event} reached the gateway`);
  return row;
}

describe('Workers edge with SALT_SOURCE=gateway', () => {
  beforeEach(async () => {
    await drainShards();
    saltCalls = [];
    rows = [];
    stubGateway();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('pseudonymizes with the salt the gateway serves for the epoch, fetched once per isolate', async () => {
    const epoch = Math.floor(Date.now() / DAY);
    expect(await trackThroughWorker('salt-probe-a', 'user-42')).toBe(200);
    const salted = saltCalls.filter((c) => c.epoch === epoch);
    expect(salted).toEqual([{ epoch, epochMs: String(DAY), status: 200 }]);

    const row = await flushedRow('salt-probe-a');
    expect(row.partial.count).toBe(1);
    const served = await registersOf(saltOf.get(epoch) as Uint8Array, 'user-42');
    expect(hllToRegisters(row.partial.users)).toEqual(served);
    // Not what the static dev salt would give: the salt really came from the gateway.
    const derived = await createStaticSaltProvider({ secret: DEV_PSEUDONYM_SALT, epochMs: DAY, retentionEpochs: 2, now: Date.now }).saltFor(epoch);
    if (derived.kind !== 'ok') throw new Error('static provider refused the current epoch');
    expect(hllToRegisters(row.partial.users)).not.toEqual(await registersOf(derived.salt, 'user-42'));

    // Later requests (other users, same epoch) use the cached salt.
    expect(await trackThroughWorker('salt-probe-b', 'user-43')).toBe(200);
    expect(saltCalls.filter((c) => c.epoch === epoch)).toHaveLength(1);
    expect(hllToRegisters((await flushedRow('salt-probe-b')).partial.users)).toEqual(await registersOf(saltOf.get(epoch) as Uint8Array, 'user-43'));
  });
});
