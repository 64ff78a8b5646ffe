import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { hllEstimate } from '../../../shared/algebra/index.ts';
import { json, makeEdge, sentRows, T0 } from '../edge/helpers.ts';
import { installFakeBrowser, loadSdk, settle, type FakeBrowser } from './fake-browser.ts';

// What the SDK sends is what the edge's /v1/collect accepts: the exact bytes, in-process.
let browser: FakeBrowser;
beforeEach(() => {
  // The browser's clock and the edge's agree, so every event lands in the window of T0.
  vi.useFakeTimers({ toFake: ['Date'], now: T0 });
  browser = installFakeBrowser();
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('browser SDK -> edge /v1/collect', () => {
  it('every event the SDK sends passes the edge schemas and is counted per event name and path', async () => {
    const sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_a', endpoint: 'https://edge.example', flushAt: 4 });
    sdk.page('Pricing', { plan: 'pro' });
    sdk.track('Signup Clicked', { value: 3 });
    sdk.identify('user-1', { email: 'ada@example.com', name: 'Ada' });
    sdk.track('Signup Clicked', { value: 4 });
    await settle();
    browser.setVisibility('hidden'); // nothing left: the batch went by fetch
    expect(browser.sendBeacon).not.toHaveBeenCalled();
    const [call] = browser.fetch.mock.calls;
    expect(call).toBeDefined();
    vi.unstubAllGlobals(); // the edge runs on a server: no fake browser around it

    const edge = makeEdge({ DIMENSIONS: 'path' });
    const res = await edge.app.request('/v1/collect', {
      method: 'POST',
      // What a browser sends for a string body: the CORS-safelisted text/plain.
      headers: { 'content-type': 'text/plain;charset=UTF-8', origin: 'https://shop.example' },
      body: call![1].body as string,
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(await json(res)).toEqual({ ok: true, accepted: 4, duplicates: 0, rejected: [] });

    await edge.flusher.flushNow();
    const rows = sentRows(edge.partials);
    const counts: Record<string, number> = {};
    for (const r of rows) {
      const key = `${r.event} ${r.dimensions.map((d) => d.join('=')).join(',')}`;
      counts[key] = (counts[key] ?? 0) + r.partial.count;
    }
    expect(rows.every((r) => r.windowStartMs === T0)).toBe(true);
    expect(counts).toEqual({ '$page path=/pricing': 1, 'Signup Clicked path=/pricing': 2, '$identify path=/pricing': 1 });
    const signup = rows.find((r) => r.event === 'Signup Clicked')!;
    expect(signup.partial).toMatchObject({ sum: 7, min: 3, max: 4 });
    // One visitor, counted as two users: before identify() the id is the anonymousId, after it
    // the userId, and the edge does not stitch identities (docs/EDGE.md).
    expect(Math.round(hllEstimate(signup.partial.users))).toBe(2);
    // Traits never leave the edge.
    expect(edge.partials.text()).not.toContain('ada@example.com');
  });
});
