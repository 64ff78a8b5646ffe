import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hllEstimate, hllMerge } from '../../../shared/algebra/index.ts';
import { createPseudonymizer } from '../../../edge/pipeline/pseudonymize.ts';
import { nodeHmac } from '../../../edge/node/hmac.ts';
import { createStaticSaltProvider, saltEpoch, webCryptoHmac, type SaltLookup, type SaltProvider } from '../../../shared/salts.ts';
import { json, makeEdge, postInit, send, sentRows, T0, track } from './helpers.ts';

const DAY = 86_400_000;
const SECRET = 'salt-master-secret-0123456789';
const USER = 'user-42';

function staticSalts(clock: { now: number }, secret = SECRET): SaltProvider {
  return createStaticSaltProvider({ secret, epochMs: DAY, retentionEpochs: 2, now: () => clock.now });
}

async function pseudonymOf(p: ReturnType<typeof createPseudonymizer>, epoch: number, site: string, id: string, nowMs = T0): Promise<string> {
  const r = await p.pseudonym(epoch, site, id, nowMs);
  if (r.kind !== 'ok') throw new Error(`no pseudonym: ${r.kind}`);
  return r.pseudonym.hex;
}

describe('static salt provider', () => {
  it('derives salt(n) = HMAC-SHA-256(PSEUDONYM_SALT, "tributary/pseudonym-salt/v1/<epochMs>/<n>")', async () => {
    const clock = { now: T0 };
    const epoch = saltEpoch(T0, DAY);
    const p = createPseudonymizer({ salts: staticSalts(clock) });
    const salt = createHmac('sha256', SECRET).update(`tributary/pseudonym-salt/v1/${DAY}/${epoch}`).digest();
    const expected = createHmac('sha256', salt).update(`site-a:${USER}`).digest('hex').slice(0, 16);
    expect(await pseudonymOf(p, epoch, 'site-a', USER)).toBe(expected);
  });

  it('gives the same user a different pseudonym in the next epoch', async () => {
    const clock = { now: T0 + DAY };
    const p = createPseudonymizer({ salts: staticSalts(clock) });
    const today = saltEpoch(clock.now, DAY);
    const a = await pseudonymOf(p, today - 1, 'site-a', USER, clock.now);
    const b = await pseudonymOf(p, today, 'site-a', USER, clock.now);
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(b).not.toBe(a);
    expect(await pseudonymOf(p, today, 'site-b', USER, clock.now)).not.toBe(b);
  });

  it('gives the same pseudonym on two edge instances sharing the secret, without coordination', async () => {
    const epoch = saltEpoch(T0, DAY);
    const one = createPseudonymizer({ salts: staticSalts({ now: T0 }) });
    // Another instance, another runtime's HMAC, another time of the same epoch.
    const two = createPseudonymizer({ salts: staticSalts({ now: T0 + 3_600_000 }), mac: nodeHmac });
    expect(await pseudonymOf(one, epoch, 'site-a', USER)).toBe(await pseudonymOf(two, epoch, 'site-a', USER, T0 + 3_600_000));
    const other = createPseudonymizer({ salts: staticSalts({ now: T0 }, 'another-secret-0123456789') });
    expect(await pseudonymOf(other, epoch, 'site-a', USER)).not.toBe(await pseudonymOf(one, epoch, 'site-a', USER));
  });

  it('serves the current epoch, the retained ones before it and the next one; nothing else', async () => {
    const clock = { now: T0 };
    const salts = staticSalts(clock);
    const now = saltEpoch(T0, DAY);
    const kinds = async (epochs: number[]) => Promise.all(epochs.map(async (e) => (await salts.saltFor(e)).kind));
    expect(await kinds([now - 2, now - 1, now, now + 1, now + 2])).toEqual(['expired', 'ok', 'ok', 'ok', 'expired']);
    expect(await salts.saltFor(now)).toMatchObject({ kind: 'ok', usableUntilMs: (now + 2) * DAY });
    clock.now += DAY; // yesterday's salt now falls out of the retention window
    expect(await kinds([now - 1, now, now + 1])).toEqual(['expired', 'ok', 'ok']);
  });

  it('stops pseudonymizing an epoch once its retention ends, even with its salt cached', async () => {
    const clock = { now: T0 };
    const p = createPseudonymizer({ salts: staticSalts(clock) });
    const epoch = saltEpoch(T0, DAY);
    await pseudonymOf(p, epoch, 's', USER);
    expect(p.now(epoch, 's', USER, T0)).toMatchObject({ kind: 'ok' });
    const end = (epoch + 2) * DAY;
    expect(p.now(epoch, 's', USER, end - 1)).toMatchObject({ kind: 'ok' });
    expect(p.now(epoch, 's', USER, end)).toEqual({ kind: 'expired' });
    clock.now = end;
    expect(await p.pseudonym(epoch, 's', USER, end)).toEqual({ kind: 'expired' });
  });
});

describe('pseudonym cache', () => {
  const EPOCH = saltEpoch(T0, DAY);

  function countingSalts(): SaltProvider & { calls: number } {
    const p = {
      epochMs: DAY,
      calls: 0,
      async saltFor(epoch: number): Promise<SaltLookup> {
        p.calls++;
        return { kind: 'ok', salt: new Uint8Array(32).fill(epoch % 256), usableUntilMs: (epoch + 2) * DAY };
      },
    };
    return p;
  }

  function countingMac(): typeof webCryptoHmac & { signs: number } {
    const mac = Object.assign(
      async (key: Uint8Array) => {
        const inner = await nodeHmac(key);
        return { synchronous: true, sign: (m: Uint8Array) => (mac.signs++, inner.sign(m)) };
      },
      { signs: 0 },
    );
    return mac;
  }

  it('computes an HMAC only on a miss, keyed by (epoch, site, id), and stays bounded', async () => {
    const salts = countingSalts();
    const mac = countingMac();
    const p = createPseudonymizer({ salts, cacheSize: 2, mac });
    expect(p.now(EPOCH, 's', 'u1', T0)).toBeUndefined(); // no salt at hand yet
    const first = await pseudonymOf(p, EPOCH, 's', 'u1');
    expect(p.now(EPOCH, 's', 'u1', T0)).toEqual({ kind: 'ok', pseudonym: { hex: first, hash: expect.any(Object) } });
    expect([salts.calls, mac.signs]).toEqual([1, 1]);
    // A miss with the salt at hand and a synchronous MAC is answered at once.
    expect(p.now(EPOCH, 't', 'u1', T0)).toMatchObject({ kind: 'ok' });
    expect(p.now(EPOCH, 's', 'u2', T0)).toMatchObject({ kind: 'ok' });
    expect([salts.calls, mac.signs, p.cacheSize]).toEqual([1, 3, 2]);
    expect(await pseudonymOf(p, EPOCH, 's', 'u1')).toBe(first); // evicted, recomputed, same value
    expect(mac.signs).toBe(4);
  });

  it('evicts the oldest pseudonym first, whatever its epoch or site', async () => {
    const salts = countingSalts();
    const mac = countingMac();
    const p = createPseudonymizer({ salts, cacheSize: 2, mac });
    await pseudonymOf(p, EPOCH, 's', 'u1');
    await pseudonymOf(p, EPOCH + 1, 's', 'u1');
    expect([mac.signs, p.cacheSize]).toEqual([2, 2]);
    // Both cached: hits sign nothing.
    await pseudonymOf(p, EPOCH, 's', 'u1');
    await pseudonymOf(p, EPOCH + 1, 's', 'u1');
    expect(mac.signs).toBe(2);
    await pseudonymOf(p, EPOCH, 't', 'u1'); // evicts (EPOCH, s, u1), the oldest
    await pseudonymOf(p, EPOCH + 1, 's', 'u1'); // still cached
    expect(mac.signs).toBe(3);
    await pseudonymOf(p, EPOCH, 's', 'u1'); // recomputed
    expect([mac.signs, p.cacheSize]).toEqual([4, 2]);
  });

  it('shares one computation between concurrent misses of the same key', async () => {
    const salts = countingSalts();
    const p = createPseudonymizer({ salts });
    const all = await Promise.all([1, 2, 3].map(() => pseudonymOf(p, EPOCH, 's', 'u1')));
    expect(new Set(all).size).toBe(1);
    expect(salts.calls).toBe(1);
  });

  it('gives the same pseudonyms with crypto.subtle and node:crypto', async () => {
    const web = createPseudonymizer({ salts: countingSalts(), mac: webCryptoHmac });
    const node = createPseudonymizer({ salts: countingSalts(), mac: nodeHmac });
    for (const id of ['u1', 'ü-2', '42']) expect(await pseudonymOf(web, EPOCH, 's', id)).toBe(await pseudonymOf(node, EPOCH, 's', id));
  });
});

describe('salt epochs through the edge', () => {
  it('picks the epoch by event time: one user is one pseudonym within an epoch, two across the boundary', async () => {
    const edge = makeEdge({ DIMENSIONS: '', WINDOW_SIZE_MS: '60000' });
    const midnight = Math.ceil(T0 / DAY) * DAY;
    edge.clock.now = midnight + 90_000;
    const at = (ms: number) => track({ userId: USER, timestamp: new Date(ms).toISOString() });
    await send(edge, '/v1/batch', { batch: [at(midnight - 90_000), at(midnight - 30_000), at(midnight + 10_000), at(midnight + 70_000)] }, { writeKey: 'wk_a' });
    const rows = new Map(sentRows(edge.partials).map((r) => [r.windowStartMs - midnight, r.partial.users]));
    expect([...rows.keys()].sort((a, b) => a - b)).toEqual([-120_000, -60_000, 0, 60_000]);
    const users = (a: number, b: number) => Math.round(hllEstimate(hllMerge(rows.get(a)!, rows.get(b)!)));
    expect(users(-120_000, -60_000)).toBe(1); // same epoch (yesterday)
    expect(users(0, 60_000)).toBe(1); // same epoch (today)
    expect(users(-60_000, 0)).toBe(2); // "unique within a salt epoch"
  });

  it('counts events older than the retention window without their user', async () => {
    const edge = makeEdge({ DIMENSIONS: '' });
    const old = track({ timestamp: new Date(T0 - 3 * DAY).toISOString() });
    const res = await send(edge, '/v1/batch', { batch: [old] }, { writeKey: 'wk_a' });
    expect(await json(res)).toMatchObject({ accepted: 1 });
    const [row] = sentRows(edge.partials);
    expect(row?.partial.count).toBe(1);
    expect(hllEstimate(row!.partial.users)).toBe(0);
    expect(await json(await edge.app.request('/health'))).toMatchObject({ usersNotCounted: { salt_expired: 1 } });
  });

  it('answers 503 salt_unavailable when the provider cannot answer, and counts nothing of the request', async () => {
    let down = true;
    const salts: SaltProvider = {
      epochMs: DAY,
      saltFor: async (epoch) => (down ? { kind: 'unavailable', reason: 'salt store unreachable' } : { kind: 'ok', salt: new Uint8Array(32).fill(1), usableUntilMs: (epoch + 2) * DAY }),
    };
    const edge = makeEdge({}, { saltProvider: salts });
    const batch = { batch: [track({ messageId: 'keep-me' })] };
    const res = await edge.app.request('/v1/batch', postInit(batch, { writeKey: 'wk_a' }));
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(await json(res)).toMatchObject({ error: { code: 'salt_unavailable' } });
    down = false;
    // The retry is not a duplicate: the failed attempt marked nothing as seen.
    expect(await json(await send(edge, '/v1/batch', batch, { writeKey: 'wk_a' }))).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(sentRows(edge.partials).reduce((n, r) => n + r.partial.count, 0)).toBe(1);
  });
});
