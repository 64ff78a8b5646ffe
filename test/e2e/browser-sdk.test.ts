import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveTestSite } from './test-site.ts';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hllEstimate, hllMerge, type PartialEnvelope, type PartialRow } from '../../shared/algebra/index.ts';
import type { RunningNodeEdge } from '../../edge/node/server.ts';
import { bundleSdk } from '../../scripts/build-sdk.ts';
import { startEdgeKafkaRig, type EdgeKafkaRig } from '../integration/setup/edge-kafka-rig.ts';
import { waitFor } from '../integration/setup/kafka-test-env.ts';

// The browser SDK in real Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
// against the real Node edge and Kafka broker. The test page and the edge are different
// origins (two ports), so every request is a real cross-origin request. The page reaches the
// edge through a recording pass-through proxy: beacons sent while a page unloads never show up
// in Playwright's request events, so what the browser sent is observed on the wire instead.
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const SITES = { beacon: 'beacon-site', fetch: 'fetch-site', optout: 'optout-site' } as const;
const WRITE_KEYS = { beacon: 'wk_beacon', fetch: 'wk_fetch', optout: 'wk_optout' } as const;

let rig: EdgeKafkaRig;
let edge: RunningNodeEdge;
let envelopes: PartialEnvelope[];
let wire: RecordingProxy;
let site: { server: Server; url: string };
let browser: Browser;

beforeAll(async () => {
  rig = await startEdgeKafkaRig({
    name: 'sdk-e2e',
    writeKeys: Object.entries(WRITE_KEYS).map(([name, key]) => `${key}:${SITES[name as keyof typeof SITES]}`).join(','),
    salt: 'browser-sdk-e2e-salt-0123456789',
  });
  ({ edge, envelopes } = rig);

  wire = await startRecordingProxy(edge.url);
  site = await serveSdkSite((await bundleSdk()).code, wire.url);
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is missing at ${CHROMIUM}: install Debian's package (apt-get install chromium, as .ci/run does); this test never downloads browsers`);
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => site?.server.close(resolve));
  await new Promise((resolve) => wire?.server.close(resolve));
  await rig?.close();
});

describe('browser SDK in Chromium -> edge -> Kafka', () => {
  it('sends page() and track() with sendBeacon when the visitor leaves the page, and each event is counted once', async () => {
    const context = await newVisitorContext();
    const page = await context.newPage();
    await page.goto(`${site.url}/pricing?plan=pro&wk=${WRITE_KEYS.beacon}`);
    await page.evaluate(() => {
      window.tributary.page();
      window.tributary.track('Signup Clicked', { value: 3 });
      window.tributary.track('Signup Clicked', { value: 4 });
    });
    // Batched: nothing sent yet, everything in the durable queue.
    expect(await queuedEvents(page)).toBe(3);
    expect(wire.requestsFor(WRITE_KEYS.beacon)).toEqual([]);

    await page.goto(`${site.url}/next`); // pagehide -> sendBeacon
    await waitFor(() => counts(SITES.beacon).size === 2 && counts(SITES.beacon).get('Signup Clicked') === 2, 'the beaconed events in Kafka');
    await afterTwoMoreEnvelopes();
    expect(Object.fromEntries(counts(SITES.beacon))).toEqual({ $page: 1, 'Signup Clicked': 2 });
    const rows = rowsOf(SITES.beacon);
    expect(rows.every((r) => r.dimensions.some(([name, value]) => name === 'path' && value === '/pricing'))).toBe(true);
    const signup = rows.filter((r) => r.event === 'Signup Clicked');
    expect(signup.reduce((sum, r) => sum + r.partial.sum, 0)).toBe(7);
    expect(Math.round(hllEstimate(signup.map((r) => r.partial.users).reduce((a, b) => hllMerge(a, b))))).toBe(1);

    // Exactly one request: a beacon (Fetch mode no-cors), text/plain, no preflight. The browser
    // took it, so the queue on this origin is empty.
    expect(wire.requestsFor(WRITE_KEYS.beacon)).toEqual([{ method: 'POST', path: '/v1/collect', contentType: 'text/plain;charset=UTF-8', fetchMode: 'no-cors', status: 202, events: 3 }]);
    expect(wire.preflights()).toBe(0);
    expect(await queuedEvents(page)).toBe(0);
    await context.close();
  });

  it('sends a full batch with fetch across origins (CORS without preflight) and empties the queue on 202', async () => {
    const context = await newVisitorContext();
    const page = await context.newPage();
    await page.goto(`${site.url}/checkout?wk=${WRITE_KEYS.fetch}&flushAt=3`);
    const left = await page.evaluate(async () => {
      window.tributary.track('Checkout Started');
      window.tributary.track('Checkout Started');
      window.tributary.track('Checkout Started'); // flushAt reached: fetch
      await window.tributary.flush();
      return JSON.parse(localStorage.getItem('trib_q') ?? '[]').length as number;
    });
    // The queue is only emptied when the response could be read, i.e. CORS allowed it.
    expect(left).toBe(0);
    expect(wire.requestsFor(WRITE_KEYS.fetch)).toEqual([{ method: 'POST', path: '/v1/collect', contentType: 'text/plain;charset=UTF-8', fetchMode: 'cors', status: 202, events: 3 }]);
    expect(wire.preflights()).toBe(0);
    await waitFor(() => counts(SITES.fetch).get('Checkout Started') === 3, 'the fetched events in Kafka');
    await afterTwoMoreEnvelopes();
    expect(Object.fromEntries(counts(SITES.fetch))).toEqual({ 'Checkout Started': 3 });
    await context.close();
  });

  it('sends nothing after optOut(): no request leaves the browser and nothing reaches Kafka', async () => {
    const optedOut = await newVisitorContext();
    const page = await optedOut.newPage();
    await page.goto(`${site.url}/pricing?wk=${WRITE_KEYS.optout}&flushAt=1`);
    const stored = await page.evaluate(() => {
      window.tributary.optOut();
      window.tributary.page();
      window.tributary.track('Opted Out Event');
      window.tributary.identify('user-1', { email: 'ada@example.com' });
      return Object.keys(localStorage);
    });
    expect(stored).toEqual(['trib_optout']);
    await page.goto(`${site.url}/next`);
    // The opt-out is remembered on the next page of the site.
    await page.goto(`${site.url}/pricing?wk=${WRITE_KEYS.optout}&flushAt=1`);
    await page.evaluate(() => window.tributary.track('Opted Out Event'));
    await page.goto(`${site.url}/next`);

    // Barrier: a visitor who did not opt out, on the same site, after the opted-out one left.
    const other = await newVisitorContext();
    const otherPage = await other.newPage();
    await otherPage.goto(`${site.url}/pricing?wk=${WRITE_KEYS.optout}`);
    await otherPage.evaluate(() => window.tributary.track('Barrier'));
    await otherPage.goto(`${site.url}/next`);
    await waitFor(() => counts(SITES.optout).get('Barrier') === 1, 'the barrier event in Kafka');
    await afterTwoMoreEnvelopes();

    expect(Object.fromEntries(counts(SITES.optout))).toEqual({ Barrier: 1 });
    // On the wire: only the barrier's beacon carried this write key.
    expect(wire.requestsFor(WRITE_KEYS.optout)).toEqual([{ method: 'POST', path: '/v1/collect', contentType: 'text/plain;charset=UTF-8', fetchMode: 'no-cors', status: 202, events: 1 }]);
    await optedOut.close();
    await other.close();
  });
});

/**
 * A browser context that identifies as the desktop Chrome a visitor runs. Headless Chromium's own
 * user agent says `HeadlessChrome`, which the edge rightly treats as a bot (and by default does
 * not count), so the test would otherwise measure the bot filter instead of the SDK.
 */
async function newVisitorContext(): Promise<BrowserContext> {
  const userAgent = `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${browser.version()} Safari/537.36`;
  return browser.newContext({ userAgent });
}

/** The test site with the SDK bundle; each page inits it with the write key and flushAt from its query. */
function serveSdkSite(sdk: string, endpoint: string): Promise<{ server: Server; url: string }> {
  return serveTestSite({
    scriptPath: '/tributary.min.js',
    bundle: sdk,
    init: (q) => {
      const options = { writeKey: q.get('wk') ?? '', endpoint, flushAt: Number(q.get('flushAt') ?? 100), flushIntervalMs: 600_000 };
      return `tributary.init(${JSON.stringify(options).replace(/</g, '\\u003c')})`;
    },
  });
}

interface WireRequest {
  method: string;
  path: string;
  contentType: string | undefined;
  /** `Sec-Fetch-Mode`: `no-cors` for sendBeacon with a text/plain body, `cors` for fetch. */
  fetchMode: string | undefined;
  status: number;
  /** Events in the body's batch. */
  events: number;
  writeKey: string | undefined;
}

interface RecordingProxy {
  server: Server;
  url: string;
  /** Requests whose body carried this write key, without the key itself. */
  requestsFor(writeKey: string): Array<Omit<WireRequest, 'writeKey'>>;
  /** CORS preflights (OPTIONS) seen: the SDK's requests must never need one. */
  preflights(): number;
}

/** Forwards every request to `target` unchanged and records what came over the wire. */
async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const seen: WireRequest[] = [];
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readAll(req);
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (typeof value === 'string' && name !== 'host' && name !== 'connection') headers.set(name, value);
      }
      const answer = await fetch(`${target}${req.url ?? '/'}`, { method: req.method, headers, ...(req.method === 'GET' || req.method === 'HEAD' ? {} : { body: new Uint8Array(body) }) });
      let parsed: { writeKey?: string; batch?: unknown[] } = {};
      try {
        parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
      } catch {
        // not JSON (e.g. a preflight): recorded without a body
      }
      seen.push({
        method: req.method ?? '',
        path: new URL(req.url ?? '/', 'http://proxy').pathname,
        contentType: req.headers['content-type'],
        fetchMode: req.headers['sec-fetch-mode'] as string | undefined,
        status: answer.status,
        events: Array.isArray(parsed.batch) ? parsed.batch.length : 0,
        writeKey: parsed.writeKey,
      });
      res.writeHead(answer.status, Object.fromEntries(answer.headers)).end(Buffer.from(await answer.arrayBuffer()));
    })().catch((e: unknown) => res.writeHead(502).end(String(e)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requestsFor: (writeKey) => seen.filter((r) => r.writeKey === writeKey).map(({ writeKey: _key, ...rest }) => rest),
    preflights: () => seen.filter((r) => r.method === 'OPTIONS').length,
  };
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function queuedEvents(page: Page): Promise<number> {
  return page.evaluate(() => (JSON.parse(localStorage.getItem('trib_q') ?? '[]') as unknown[]).length);
}

function rowsOf(siteId: string): PartialRow[] {
  return envelopes.flatMap((e) => e.rows).filter((r) => r.site === siteId);
}

/** Events counted per event name for one site, over every envelope so far. */
function counts(siteId: string): Map<string, number> {
  const byEvent = new Map<string, number>();
  for (const row of rowsOf(siteId)) byEvent.set(row.event, (byEvent.get(row.event) ?? 0) + row.partial.count);
  return byEvent;
}

/** The edge flushes every 100 ms: two more envelopes mean anything still in flight has landed. */
async function afterTwoMoreEnvelopes(): Promise<void> {
  const seen = envelopes.length;
  await waitFor(() => envelopes.length >= seen + 2, 'two more envelopes (heartbeats)');
}
