import { describe, expect, it, vi } from 'vitest';
import { createGatewayApp } from '../../../core/gateway/app.ts';
import { silentLogger } from '../../../core/log.ts';
import { createGatewaySaltProvider, type GatewaySaltProviderOptions } from '../../../edge/gateway-salt-provider.ts';
import { saltUsableUntil, type SaltLookup, type SaltProvider } from '../../../shared/salts.ts';

// The edge's gateway salt provider against the real gateway app (in-process, through an injected
// fetch) backed by a fake store, and against hand-made failures; one injected clock for both.
const SECRET = 'unit-salts-secret-0123456789abcdef0123';
const DAY = 86_400_000;
const EPOCH = 20_400;
const T0 = EPOCH * DAY + 12 * 3_600_000; // noon of EPOCH

const saltOf = (epoch: number): Uint8Array => Uint8Array.from({ length: 32 }, (_, i) => (epoch * 31 + i * 7) & 0xff);
const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/** The central store as the gateway sees it: answers per epoch, counts lookups. */
function fakeStore(epochMs = DAY) {
  const store = {
    epochMs,
    lookups: [] as number[],
    answer: 'ok' as SaltLookup['kind'],
    async saltFor(epoch: number): Promise<SaltLookup> {
      store.lookups.push(epoch);
      if (store.answer === 'expired') return { kind: 'expired' };
      if (store.answer === 'unavailable') return { kind: 'unavailable', reason: 'ClickHouse down (fake)' };
      return { kind: 'ok', salt: saltOf(epoch), usableUntilMs: saltUsableUntil(epoch, epochMs, 2) };
    },
  } satisfies SaltProvider & Record<string, unknown>;
  return store;
}

function setup(o: { gatewayEpochMs?: number; provider?: Partial<GatewaySaltProviderOptions> } = {}) {
  const clock = { now: T0 };
  const store = fakeStore(o.gatewayEpochMs ?? DAY);
  const app = createGatewayApp({ keys: new Map([['edge-w', SECRET]]), producer: { sendPartials: async () => {}, sendRejected: async () => {} }, logger: silentLogger(), now: () => clock.now, salts: store });
  const requests: string[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const salts = createGatewaySaltProvider({
    gateway: { url: 'https://gw.test/', edgeId: 'edge-w', secret: SECRET },
    epochMs: DAY,
    retentionEpochs: 2,
    now: () => clock.now,
    fetch: async (request) => {
      requests.push(new URL(request.url).pathname + new URL(request.url).search);
      return app.fetch(request);
    },
    log: (fields) => logs.push(fields),
    ...o.provider,
  });
  return { clock, store, salts, requests, logs };
}

const saltHex = (r: SaltLookup): string => (r.kind === 'ok' ? hex(r.salt) : r.kind);

describe('gateway salt provider', () => {
  it('fetches an epoch salt from the gateway (signed, with its epoch length) and caches it until usableUntilMs', async () => {
    const { clock, store, salts, requests } = setup();
    const first = await salts.saltFor(EPOCH);
    expect(first).toEqual({ kind: 'ok', salt: saltOf(EPOCH), usableUntilMs: (EPOCH + 2) * DAY });
    expect(requests).toEqual([`/v1/salts/${EPOCH}?epochMs=${DAY}`]);
    // Cached: later lookups (the next day too, while retained) do not ask again.
    clock.now = (EPOCH + 1) * DAY + 1000;
    expect(saltHex(await salts.saltFor(EPOCH))).toBe(hex(saltOf(EPOCH)));
    expect(store.lookups).toEqual([EPOCH]);
    // Past usableUntilMs the cached salt is refused without a request, and so is any older epoch.
    clock.now = (EPOCH + 2) * DAY;
    expect(await salts.saltFor(EPOCH)).toEqual({ kind: 'expired' });
    expect(await salts.saltFor(EPOCH - 5)).toEqual({ kind: 'expired' });
    expect(requests).toHaveLength(1);
  });

  it('shares one request between concurrent lookups of the same epoch', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { salts, store } = setup();
    const original = store.saltFor;
    store.saltFor = async (epoch) => {
      await gate;
      return original(epoch);
    };
    const pending = Array.from({ length: 20 }, () => salts.saltFor(EPOCH));
    release();
    const answers = await Promise.all(pending);
    expect(new Set(answers.map(saltHex))).toEqual(new Set([hex(saltOf(EPOCH))]));
    expect(store.lookups).toEqual([EPOCH]);
  });

  it('prefetches the next epoch shortly before the rollover, so the new epoch starts from the cache', async () => {
    const { clock, salts, requests, logs } = setup({ provider: { prefetchMarginMs: 60_000 } });
    expect(salts.prefetch()).toBeUndefined(); // noon: nothing to do
    await salts.saltFor(EPOCH);
    expect(requests).toEqual([`/v1/salts/${EPOCH}?epochMs=${DAY}`]);

    clock.now = (EPOCH + 1) * DAY - 30_000; // 30 s before midnight
    const prefetch = salts.prefetch();
    expect(prefetch).toBeInstanceOf(Promise);
    expect(salts.prefetch()).toBeUndefined(); // already in flight: not twice
    await prefetch;
    expect(requests).toEqual([`/v1/salts/${EPOCH}?epochMs=${DAY}`, `/v1/salts/${EPOCH + 1}?epochMs=${DAY}`]);
    expect(salts.prefetch()).toBeUndefined(); // cached now

    clock.now = (EPOCH + 1) * DAY + 5;
    expect(saltHex(await salts.saltFor(EPOCH + 1))).toBe(hex(saltOf(EPOCH + 1)));
    expect(requests).toHaveLength(2);
    expect(logs.filter((l) => l.event === 'salt_fetched').map((l) => l.prefetch)).toEqual([false, true]);
  });

  it('starts the prefetch from a lookup too, when one happens inside the margin', async () => {
    const { clock, salts, requests } = setup({ provider: { prefetchMarginMs: 60_000 } });
    clock.now = (EPOCH + 1) * DAY - 10_000;
    await salts.saltFor(EPOCH);
    await vi.waitFor(() => expect(requests.sort()).toEqual([`/v1/salts/${EPOCH + 1}?epochMs=${DAY}`, `/v1/salts/${EPOCH}?epochMs=${DAY}`].sort()));
  });

  it('maps 410 to expired and remembers past epochs; refuses locally what its own retention excludes', async () => {
    const { store, salts, requests } = setup();
    store.answer = 'expired';
    expect(await salts.saltFor(EPOCH - 1)).toEqual({ kind: 'expired' });
    expect(await salts.saltFor(EPOCH - 1)).toEqual({ kind: 'expired' });
    expect(requests).toHaveLength(1);
    // Past its own retention, or more than an epoch ahead: never asked.
    expect(await salts.saltFor(EPOCH - 2)).toEqual({ kind: 'expired' });
    expect(await salts.saltFor(EPOCH + 2)).toEqual({ kind: 'expired' });
    expect(await salts.saltFor(-1)).toEqual({ kind: 'expired' });
    expect(requests).toHaveLength(1);
  });

  it('maps an unreachable store (503) to unavailable and backs off, honouring Retry-After, before asking again', async () => {
    const { clock, store, salts, requests, logs } = setup();
    store.answer = 'unavailable';
    const down = await salts.saltFor(EPOCH);
    expect(down.kind).toBe('unavailable');
    expect(down.kind === 'unavailable' && down.reason).toContain('503 salt_store_unavailable');
    // Retry-After is 5 s at the gateway: no request before then, whatever the traffic.
    for (let i = 0; i < 50; i++) expect((await salts.saltFor(EPOCH)).kind).toBe('unavailable');
    clock.now += 4_999;
    expect((await salts.saltFor(EPOCH)).kind).toBe('unavailable');
    expect(requests).toHaveLength(1);
    store.answer = 'ok';
    clock.now += 1;
    expect(saltHex(await salts.saltFor(EPOCH))).toBe(hex(saltOf(EPOCH)));
    expect(requests).toHaveLength(2);
    expect(logs.map((l) => l.event)).toEqual(['salt_fetch_failed', 'salt_fetch_recovered', 'salt_fetched']);
  });

  it('maps network errors and other 5xx to unavailable, doubling the backoff per failure up to the cap', async () => {
    const clock = { now: T0 };
    const calls: string[] = [];
    let answer: () => Promise<Response> = () => Promise.reject(new TypeError('fetch failed: ECONNREFUSED'));
    const salts = createGatewaySaltProvider({
      gateway: { url: 'https://gw.test', edgeId: 'edge-w', secret: SECRET },
      epochMs: DAY,
      retentionEpochs: 2,
      now: () => clock.now,
      minBackoffMs: 1000,
      maxBackoffMs: 3000,
      fetch: (request) => {
        calls.push(request.url);
        return answer();
      },
    });
    const first = await salts.saltFor(EPOCH);
    expect(first).toEqual({ kind: 'unavailable', reason: 'gateway unreachable: fetch failed: ECONNREFUSED' });
    const delays: number[] = [];
    answer = () => Promise.resolve(new Response('<html>bad gateway</html>', { status: 502 }));
    for (let i = 0; i < 4; i++) {
      const before = calls.length;
      let waited = 0;
      while (calls.length === before) {
        clock.now += 250;
        waited += 250;
        const r = await salts.saltFor(EPOCH);
        expect(r.kind).toBe('unavailable');
        if (calls.length > before) expect(r.kind === 'unavailable' && r.reason).toBe('gateway answered 502');
      }
      delays.push(waited);
    }
    expect(delays).toEqual([1000, 2000, 3000, 3000]);
  });

  it('times out a gateway that does not answer, and does not wait forever on a request that never settles', async () => {
    const clock = { now: T0 };
    let calls = 0;
    let mode: 'abortable' | 'hang' = 'abortable';
    const salts = createGatewaySaltProvider({
      gateway: { url: 'https://gw.test', edgeId: 'edge-w', secret: SECRET },
      epochMs: DAY,
      retentionEpochs: 2,
      now: () => clock.now,
      timeoutMs: 20,
      minBackoffMs: 1,
      fetch: (request) => {
        calls++;
        if (mode === 'hang') return new Promise<Response>(() => undefined);
        return new Promise<Response>((_, reject) => request.signal.addEventListener('abort', () => reject(request.signal.reason as Error)));
      },
    });
    const timedOut = await salts.saltFor(EPOCH);
    expect(timedOut.kind).toBe('unavailable');
    expect(timedOut.kind === 'unavailable' && timedOut.reason).toMatch(/^gateway unreachable: .*(time|abort)/i);

    // A runtime may drop a request (a cancelled Workers request): later lookups stop sharing it.
    mode = 'hang';
    clock.now += 10;
    void salts.saltFor(EPOCH + 1);
    await vi.waitFor(() => expect(calls).toBe(2));
    clock.now += 500;
    void salts.saltFor(EPOCH + 1); // still shared
    clock.now += 521; // past timeoutMs + 1 s
    void salts.saltFor(EPOCH + 1);
    await vi.waitFor(() => expect(calls).toBe(3));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(calls).toBe(3);
  });

  it('answers unavailable with the gateway reason when the epoch lengths differ (409), and never logs salt bytes', async () => {
    const mismatch = setup({ gatewayEpochMs: 3_600_000 });
    const r = await mismatch.salts.saltFor(EPOCH);
    expect(r.kind).toBe('unavailable');
    expect(r.kind === 'unavailable' && r.reason).toContain('409 epoch_ms_mismatch');
    expect(r.kind === 'unavailable' && r.reason).toContain('SALT_EPOCH_MS=86400000');
    expect(mismatch.store.lookups).toEqual([]);

    const { salts, logs } = setup({ provider: { prefetchMarginMs: DAY } });
    await salts.saltFor(EPOCH);
    await salts.prefetch();
    const text = JSON.stringify(logs);
    expect(logs.length).toBeGreaterThan(0);
    for (const epoch of [EPOCH, EPOCH + 1]) {
      expect(text).not.toContain(hex(saltOf(epoch)));
      expect(text).not.toContain(btoa(String.fromCharCode(...saltOf(epoch))));
    }
  });

  it('refuses a 200 that does not carry a 32-byte salt for the epoch asked', async () => {
    const bodies = [
      { epoch: EPOCH + 1, epochMs: DAY, salt: btoa('x'.repeat(32)), usableUntilMs: (EPOCH + 2) * DAY },
      { epoch: EPOCH, epochMs: DAY, salt: btoa('short'), usableUntilMs: (EPOCH + 2) * DAY },
      { epoch: EPOCH, epochMs: DAY, salt: '%%%', usableUntilMs: (EPOCH + 2) * DAY },
      'not json',
    ];
    for (const body of bodies) {
      const salts = createGatewaySaltProvider({
        gateway: { url: 'https://gw.test', edgeId: 'edge-w', secret: SECRET },
        epochMs: DAY,
        retentionEpochs: 2,
        now: () => T0,
        fetch: async () => new Response(typeof body === 'string' ? body : JSON.stringify(body), { status: 200 }),
      });
      const r = await salts.saltFor(EPOCH);
      expect(r.kind === 'unavailable' && r.reason).toBe(`the gateway answered 200 without a valid 32-byte salt for epoch ${EPOCH}`);
    }
  });

  it('keeps at most maxEpochs salts', async () => {
    const { clock, salts, store } = setup({ provider: { maxEpochs: 2, retentionEpochs: 5 } });
    store.saltFor = async (epoch) => {
      store.lookups.push(epoch);
      return { kind: 'ok', salt: saltOf(epoch), usableUntilMs: saltUsableUntil(epoch, DAY, 5) };
    };
    clock.now = T0 + 3 * DAY;
    for (const e of [EPOCH, EPOCH + 1, EPOCH + 2]) await salts.saltFor(e);
    await salts.saltFor(EPOCH + 2);
    await salts.saltFor(EPOCH + 1);
    expect(store.lookups.filter((e) => e >= EPOCH)).toEqual([EPOCH, EPOCH + 1, EPOCH + 2]);
    await salts.saltFor(EPOCH); // evicted: asked again
    expect(store.lookups.filter((e) => e >= EPOCH)).toEqual([EPOCH, EPOCH + 1, EPOCH + 2, EPOCH]);
  });
});
