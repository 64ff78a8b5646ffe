import { existsSync, mkdtempSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { serveTestSite } from './test-site.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCoreConfig } from '../../core/config/core-config.ts';
import { silentLogger } from '../../core/log.ts';
import { startPipeline, type Pipeline } from '../../core/pipeline.ts';
import { testKafkaBrokers, uniqueName, waitFor } from '../integration/setup/kafka-test-env.ts';
import { tempDedupDir } from '../integration/setup/dedup-dir.ts';

// Segment's own browser library, @segment/analytics-next, unmodified (bundled from node_modules
// with esbuild at test time), in Debian's Chromium, against the whole pipeline of `tributary
// start`: Node edge -> Kafka -> aggregator -> embedded ClickHouse. Every call is checked where it
// ends up: in ClickHouse, counted exactly once.
//
// The library is pointed at the edge the way a user does it: `cdnSettings` given to
// AnalyticsBrowser.load, so it never fetches settings from cdn.segment.com, with
// integrations['Segment.io'].apiHost/protocol naming the edge. Chromium resolves no host but
// 127.0.0.1; cdn.segment.com and api.segment.io go to a local trap that counts connections, and
// the test asserts it saw none.
//
// The page reaches the edge through a recording pass-through proxy: requests sent while a page
// unloads (keepalive fetch) never show up in Playwright's request events, so what the browser
// sent is observed on the wire instead.
const CHROMIUM = '/usr/bin/chromium';
const SITES = { standard: 'ajs-standard', batching: 'ajs-batching', unload: 'ajs-unload', retry: 'ajs-retry', bot: 'ajs-bot', barrier: 'ajs-barrier' } as const;
type SiteName = keyof typeof SITES;
const WRITE_KEYS: Record<SiteName, string> = { standard: 'wk_ajs_std', batching: 'wk_ajs_batch', unload: 'wk_ajs_unload', retry: 'wk_ajs_retry', bot: 'wk_ajs_bot', barrier: 'wk_ajs_barrier' };
// A real desktop Chrome. Headless Chromium says `HeadlessChrome`, which the edge rightly treats as
// a bot under BOT_POLICY=drop: the visitors below must be counted because they look like people,
// not because the bot filter is off.
const DESKTOP_CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

let pipeline: Pipeline;
let wire: RecordingProxy;
let trap: { server: TcpServer; port: number; connections: number };
let site: { server: Server; url: string };
let browser: Browser;
const segmentRequests: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is missing at ${CHROMIUM}: install Debian's package (apt-get install chromium, as .ci/run does); this test never downloads browsers`);
  }
  const core = parseCoreConfig({
    CLICKHOUSE_PATH: mkdtempSync(join(tmpdir(), 'trib-ajs-')),
    PORT: '0',
    QUERY_PORT: '0',
    // Outside dev the query API needs read keys (this test reads ClickHouse directly).
    QUERY_READ_KEYS: 'rk_ajs_e2e_0123456789abcdef:ajs-unused',
    PARTIALS_TOPIC: uniqueName('ajs-partials'),
    REJECTED_TOPIC: uniqueName('ajs-rejected'),
    DEAD_LETTER_TOPIC: uniqueName('ajs-dlq'),
    AGGREGATOR_GROUP: uniqueName('ajs-aggregator'),
    // One partition per edge source, in order: the barrier event below then proves that
    // everything the edge sent before it has been written.
    PARTIALS_ROUTING: 'source',
    EMIT_INTERVAL_MS: '200',
    // Windows stay open for corrections: a retry of the library landing after a minute boundary
    // is still counted (and must still be counted once).
    ALLOWED_LATENESS_MS: '600000',
  });
  if (!core.ok) throw new Error(core.errors.join('\n'));
  const edgeEnv = {
    TRIBUTARY_WRITE_KEYS: (Object.keys(SITES) as SiteName[]).map((s) => `${WRITE_KEYS[s]}:${SITES[s]}`).join(','),
    PSEUDONYM_SALT: 'analytics-next-e2e-salt-0123456789',
    // The default, spelled out: this test is about visitors who look like people.
    BOT_POLICY: 'drop',
    FLUSH_INTERVAL_MS: '100',
    HEARTBEAT_MS: '200',
    DEDUP_DIR: tempDedupDir(),
  };
  pipeline = await startPipeline(core.config, edgeEnv, testKafkaBrokers(), silentLogger());
  wire = await startRecordingProxy(pipeline.edgeUrl);
  trap = await startTrap();
  site = await serveLibrarySite(await bundleAnalyticsNext(), wire.url);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      // No network: Segment's hosts reach the trap, every other name fails to resolve.
      `--host-resolver-rules=MAP cdn.segment.com 127.0.0.1:${trap.port}, MAP api.segment.io 127.0.0.1:${trap.port}, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1`,
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  for (const s of [site?.server, wire?.server, trap?.server]) await new Promise((resolve) => (s ? s.close(resolve) : resolve(undefined)));
  await pipeline?.stop();
});

describe('@segment/analytics-next in Chromium -> edge -> Kafka -> aggregator -> ClickHouse', () => {
  it('counts anonymous page() and track(), identify() and identified events, each exactly once (standard delivery)', async () => {
    const visitors = await Promise.all([1, 2, 3].map(() => newVisitorContext()));
    const pages: Page[] = [];
    for (const visitor of visitors) {
      const page = await visitor.newPage();
      pages.push(page);
      await page.goto(`${site.url}/pricing?wk=${WRITE_KEYS.standard}&mode=standard`);
      await page.evaluate(async () => {
        await window.analytics.page();
        await window.analytics.track('Viewed Pricing', { value: 5, plan: null });
      });
    }
    // The first visitor signs up: identify() (anonymousId still sent), then identified events.
    const userIds = await pages[0]!.evaluate(async () => {
      const before = (await window.analytics.user()).id();
      await window.analytics.identify('user-42', { plan: 'pro' });
      await window.analytics.track('Upgraded', { revenue: 20 });
      return { before, after: (await window.analytics.user()).id() };
    });
    expect(userIds).toEqual({ before: null, after: 'user-42' });
    await waitFor(() => wire.events(WRITE_KEYS.standard).length === 3 * 2 + 2, 'the standard-mode requests on the wire');

    const sent = wire.events(WRITE_KEYS.standard);
    // Anonymous calls really carried `"userId": null` (the case that was refused before).
    expect(sent.filter((e) => e.userIdNull).map((e) => e.type).sort()).toEqual(['page', 'page', 'page', 'track', 'track', 'track']);
    expect(sent.filter((e) => !e.userIdNull).map((e) => e.type).sort()).toEqual(['identify', 'track']);
    expect(wire.requests(WRITE_KEYS.standard).map((r) => `${r.path} ${r.status}`).sort()).toEqual([...Array(3).fill('/v1/p 200'), '/v1/i 200', ...Array(4).fill('/v1/t 200')].sort());

    await settle();
    expect(await countedEvents(SITES.standard)).toEqual({
      $page: { events: 3, uniques: 3 },
      'Viewed Pricing': { events: 3, uniques: 3 },
      $identify: { events: 1, uniques: 1 },
      Upgraded: { events: 1, uniques: 1 },
    });
    for (const visitor of visitors) await visitor.close();
  });

  it('batching mode: a full batch goes out at once, the rest with a keepalive request when the page unloads; each event counted once', async () => {
    const visitor = await newVisitorContext();
    const page = await visitor.newPage();
    await page.goto(`${site.url}/pricing?wk=${WRITE_KEYS.batching}&mode=batching`);
    // size 4: page + 3 tracks fill a batch; the timeout (10 min) never fires in this test.
    await page.evaluate(() => {
      void window.analytics.page();
      for (let i = 0; i < 3; i++) void window.analytics.track('Added To Cart', { value: i });
    });
    await waitFor(() => wire.requests(WRITE_KEYS.batching).length === 1, 'the first batch on the wire');
    await page.evaluate(() => {
      void window.analytics.track('Checkout Started');
      void window.analytics.track('Checkout Started');
    });
    // The two events wait in the library's buffer until the visitor leaves the page.
    expect(wire.requests(WRITE_KEYS.batching)).toHaveLength(1);
    await page.goto(`${site.url}/next`);
    await waitFor(() => wire.requests(WRITE_KEYS.batching).length === 2, 'the batch sent on unload');

    expect(wire.requests(WRITE_KEYS.batching).map((r) => ({ path: r.path, status: r.status, events: r.events.length }))).toEqual([
      { path: '/v1/b', status: 200, events: 4 },
      { path: '/v1/b', status: 200, events: 2 },
    ]);
    expect(wire.events(WRITE_KEYS.batching).every((e) => e.userIdNull)).toBe(true);

    await settle();
    expect(await countedEvents(SITES.batching)).toEqual({
      $page: { events: 1, uniques: 1 },
      'Added To Cart': { events: 3, uniques: 1 },
      'Checkout Started': { events: 2, uniques: 1 },
    });
    await visitor.close();
  });

  it('a track() right before the visitor leaves is counted once, whether the keepalive request or the library\'s persisted retry brings it', async () => {
    const duplicatesBefore = await dropped('duplicate_message_id');
    const visitor = await newVisitorContext();
    const page = await visitor.newPage();
    await page.goto(`${site.url}/pricing?wk=${WRITE_KEYS.unload}&mode=keepalive`);
    await page.evaluate(() => window.analytics.ready());
    // Not awaited: the page goes away while the library is still handling the call.
    await page.evaluate(() => void window.analytics.track('Clicked Outbound Link'));
    await page.goto(`${site.url}/next`);
    // Whatever the library still held when the page went away it kept in localStorage and sends
    // on the next visit: come back until it holds nothing more.
    const pricing = `${site.url}/pricing?wk=${WRITE_KEYS.unload}&mode=keepalive`;
    await waitFor(async () => {
      if ((await persistedInLibrary(page, WRITE_KEYS.unload)) === 0) return true;
      // Stay until the library has had its answer, or it would keep the event once more.
      const answered = page.waitForResponse((r) => r.url().startsWith(wire.url) && r.request().method() === 'POST');
      await page.goto(pricing);
      await answered;
      await page.goto(`${site.url}/next`);
      return false;
    }, 'the library to hold no unsent event');
    await waitFor(() => wire.events(WRITE_KEYS.unload).length >= 1, 'the unload event on the wire');
    expect(wire.requests(WRITE_KEYS.unload).every((r) => r.status === 200)).toBe(true);
    // In Chromium the library's fetch promise fails as the page unloads even though the
    // keepalive request goes out, so it usually keeps the event and sends it again on the next
    // visit: the same messageId, counted once by the edge.
    const sends = wire.events(WRITE_KEYS.unload);
    expect(new Set(sends.map((e) => e.messageId)).size).toBe(1);
    expect((await dropped('duplicate_message_id')) - duplicatesBefore).toBe(sends.length - 1);

    await settle();
    expect(await countedEvents(SITES.unload)).toEqual({ 'Clicked Outbound Link': { events: 1, uniques: 1 } });
    await visitor.close();
  });

  it('a retry of the library after a lost answer (same messageId, X-Retry-Count header) is counted once', async () => {
    const duplicatesBefore = await dropped('duplicate_message_id');
    wire.loseFirstAnswer(WRITE_KEYS.retry);
    const visitor = await newVisitorContext();
    const page = await visitor.newPage();
    await page.goto(`${site.url}/pricing?wk=${WRITE_KEYS.retry}&mode=standard`);
    await page.evaluate(async () => {
      await window.analytics.track('Started Trial');
    });
    // The edge stored the first attempt; the browser was told 503 and sent the same event again.
    await waitFor(() => wire.requests(WRITE_KEYS.retry).length === 2, 'the retried request on the wire');
    const [first, retry] = wire.requests(WRITE_KEYS.retry);
    expect([first?.status, first?.edgeStatus, retry?.status, retry?.edgeStatus]).toEqual([503, 200, 200, 200]);
    expect(retry?.retryCountHeader).toBe('1');
    expect(retry?.events.map((e) => e.messageId)).toEqual(first?.events.map((e) => e.messageId));
    expect((await dropped('duplicate_message_id')) - duplicatesBefore).toBe(1);

    await settle();
    expect(await countedEvents(SITES.retry)).toEqual({ 'Started Trial': { events: 1, uniques: 1 } });
    await visitor.close();
  });

  it('BOT_POLICY=drop is in force: headless Chromium\'s own user agent is acknowledged but not counted, and /health says so', async () => {
    const botsBefore = await dropped('bot');
    const headless = watchSegmentRequests(await browser.newContext()); // Chromium's own user agent
    const page = await headless.newPage();
    expect(await page.evaluate(() => navigator.userAgent)).toContain('HeadlessChrome');
    await page.goto(`${site.url}/pricing?wk=${WRITE_KEYS.bot}&mode=standard`);
    await page.evaluate(async () => {
      await window.analytics.page();
      await window.analytics.track('Viewed Pricing');
    });
    await waitFor(() => wire.events(WRITE_KEYS.bot).length === 2, 'the headless requests on the wire');
    // Acknowledged (so the library does not retry), then dropped as a bot and counted as such.
    expect(wire.requests(WRITE_KEYS.bot).map((r) => r.status)).toEqual([200, 200]);
    expect((await dropped('bot')) - botsBefore).toBe(2);

    await settle();
    expect(await countedEvents(SITES.bot)).toEqual({});
    await headless.close();
  });

  it('needed nothing from Segment\'s servers, and every CORS preflight was answered', () => {
    // No settings, no metrics, no events: checked after every test above has run.
    expect(segmentRequests).toEqual([]);
    expect(trap.connections).toBe(0);
    // Every CORS preflight (the library sends Authorization) was answered.
    expect(wire.preflights().length).toBeGreaterThan(0);
    expect(wire.preflights().every((status) => status === 204)).toBe(true);
  });
});

/** A browser context that identifies as the desktop Chrome a visitor runs. */
async function newVisitorContext(): Promise<BrowserContext> {
  return watchSegmentRequests(await browser.newContext({ userAgent: DESKTOP_CHROME }));
}

/** Records every request the context's pages make to Segment's hosts (observed, not intercepted). */
function watchSegmentRequests(context: BrowserContext): BrowserContext {
  context.on('request', (r) => {
    if (/(^|\.)segment\.(com|io)$/.test(new URL(r.url()).hostname)) segmentRequests.push(r.url());
  });
  return context;
}

/**
 * Writes one event from outside the browser and waits until ClickHouse has it. The edge has one
 * source and PARTIALS_ROUTING=source puts it in one partition, which the aggregator reads in
 * order: once the barrier is written, everything the edge had sent before it is written too.
 */
async function settle(): Promise<void> {
  const event = uniqueName('barrier');
  const res = await fetch(`${pipeline.edgeUrl}/v1/track`, {
    method: 'POST',
    headers: { authorization: `Basic ${btoa(`${WRITE_KEYS.barrier}:`)}`, 'content-type': 'application/json', 'user-agent': DESKTOP_CHROME },
    body: JSON.stringify({ event, anonymousId: 'barrier', context: { userAgent: DESKTOP_CHROME } }),
  });
  expect(res.status).toBe(200);
  await waitFor(async () => (await countedEvents(SITES.barrier))[event]?.events === 1, `the barrier event ${event} in ClickHouse`);
}

/** Events and unique users per event name for one site, as ClickHouse has them. */
async function countedEvents(siteId: string): Promise<Record<string, { events: number; uniques: number }>> {
  const rs = await pipeline.clickhouse.client.query({
    query: 'SELECT event, sum(events) AS events, tributary_hll_estimate(maxMap(users_hll)) AS uniques FROM agg_minute WHERE site = {site:String} GROUP BY event ORDER BY event',
    query_params: { site: siteId },
    format: 'JSONEachRow',
  });
  const rows = await rs.json<{ event: string; events: string | number; uniques: number }>();
  return Object.fromEntries(rows.map((r) => [r.event, { events: Number(r.events), uniques: Math.round(Number(r.uniques)) }]));
}

/** The edge's /health counter of valid, acknowledged events it did not aggregate, for one reason. */
async function dropped(reason: 'bot' | 'duplicate_message_id'): Promise<number> {
  const res = await fetch(`${pipeline.edgeUrl}/health`);
  const body = (await res.json()) as { dropped?: Record<string, number> };
  return body.dropped?.[reason] ?? Number.NaN;
}

/**
 * Events the library persisted for this write key when its page went away (its queues write
 * `persisted-queue:v1:<writeKey>:<queue>:items` on pagehide and send them on the next load).
 */
async function persistedInLibrary(page: Page, writeKey: string): Promise<number> {
  return page.evaluate((prefix) => {
    let n = 0;
    for (let i = 0; i < localStorage.length; i++) {
      const name = localStorage.key(i) ?? '';
      if (name.startsWith(prefix) && name.endsWith(':items')) n += (JSON.parse(localStorage.getItem(name) ?? '[]') as unknown[]).length;
    }
    return n;
  }, `persisted-queue:v1:${writeKey}:`);
}

/** @segment/analytics-next as a script that sets `window.AnalyticsBrowser`. */
async function bundleAnalyticsNext(): Promise<string> {
  const result = await build({
    stdin: { contents: "import { AnalyticsBrowser } from '@segment/analytics-next';\nwindow.AnalyticsBrowser = AnalyticsBrowser;\n", resolveDir: import.meta.dirname, loader: 'js', sourcefile: 'analytics-next-entry.js' },
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'chrome120',
    write: false,
    logLevel: 'silent',
  });
  const file = result.outputFiles[0];
  if (!file) throw new Error('esbuild produced no bundle of @segment/analytics-next');
  return file.text;
}

/**
 * The settings a user puts in their page (docs/SDK.md): the edge as Segment.io's apiHost, the
 * write key as its apiKey, no metrics to Segment, and the delivery strategy under test.
 */
function loadScript(writeKey: string, edge: URL, mode: string): string {
  const deliveryStrategy =
    mode === 'batching'
      ? { strategy: 'batching', config: { size: 4, timeout: 600_000 } }
      : mode === 'keepalive'
        ? { strategy: 'standard', config: { keepalive: true } }
        : undefined;
  const cdnSettings = {
    integrations: {
      'Segment.io': { apiKey: writeKey, apiHost: `${edge.host}/v1`, protocol: edge.protocol.replace(':', ''), ...(deliveryStrategy ? { deliveryStrategy } : {}) },
    },
    metrics: { sampleRate: 0 },
  };
  const settings = JSON.stringify({ writeKey, cdnSettings }).replace(/</g, '\\u003c');
  return `window.analytics = AnalyticsBrowser.load(${settings});`;
}

/** The test site with the library bundle; each page loads it for the write key and mode in its query. */
function serveLibrarySite(bundle: string, edgeUrl: string): Promise<{ server: Server; url: string }> {
  const edge = new URL(edgeUrl);
  return serveTestSite({ scriptPath: '/analytics-next.js', bundle, init: (q) => loadScript(q.get('wk') ?? '', edge, q.get('mode') ?? 'standard') });
}

/** Counts TCP connections to Segment's hosts (mapped here by Chromium's resolver rules) and closes them. */
async function startTrap(): Promise<{ server: TcpServer; port: number; connections: number }> {
  const trapState = { server: createTcpServer(), port: 0, connections: 0 };
  trapState.server.on('connection', (socket) => {
    trapState.connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => trapState.server.listen(0, '127.0.0.1', resolve));
  trapState.port = (trapState.server.address() as AddressInfo).port;
  return trapState;
}

interface WireEvent {
  type: string;
  messageId: string;
  /** The event carried `"userId": null`. */
  userIdNull: boolean;
}

interface WireRequest {
  path: string;
  /** What the browser was answered. */
  status: number;
  /** What the edge answered (differs when the proxy lost the answer on purpose). */
  edgeStatus: number;
  retryCountHeader: string | undefined;
  writeKey: string | undefined;
  events: WireEvent[];
}

interface RecordingProxy {
  server: Server;
  url: string;
  /** POSTs whose body carried this write key. */
  requests(writeKey: string): WireRequest[];
  /** Events of those requests, in the order they were sent. */
  events(writeKey: string): WireEvent[];
  /** Statuses of the CORS preflights (OPTIONS) seen. */
  preflights(): number[];
  /** The next POST with this write key reaches the edge, but the browser is answered 503. */
  loseFirstAnswer(writeKey: string): void;
}

/** Forwards every request to `target` unchanged and records what came over the wire. */
async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const seen: WireRequest[] = [];
  const preflights: number[] = [];
  const loseAnswer = new Set<string>();
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readAll(req);
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (typeof value === 'string' && name !== 'host' && name !== 'connection') headers.set(name, value);
      }
      const answer = await fetch(`${target}${req.url ?? '/'}`, { method: req.method, headers, ...(req.method === 'GET' || req.method === 'HEAD' ? {} : { body: new Uint8Array(body) }) });
      let status = answer.status;
      if (req.method === 'OPTIONS') preflights.push(answer.status);
      else if (req.method === 'POST') {
        const parsed = JSON.parse(body.toString('utf8')) as { writeKey?: string; batch?: unknown[] } & Record<string, unknown>;
        const events = (Array.isArray(parsed.batch) ? parsed.batch : [parsed]) as Array<Record<string, unknown>>;
        if (parsed.writeKey !== undefined && loseAnswer.delete(parsed.writeKey)) status = 503;
        seen.push({
          path: new URL(req.url ?? '/', 'http://proxy').pathname,
          status,
          edgeStatus: answer.status,
          retryCountHeader: req.headers['x-retry-count'] as string | undefined,
          writeKey: parsed.writeKey,
          events: events.map((e) => ({ type: String(e.type), messageId: String(e.messageId), userIdNull: 'userId' in e && e.userId === null })),
        });
      }
      const answerBody = Buffer.from(await answer.arrayBuffer());
      if (status !== answer.status) res.writeHead(status, { 'access-control-allow-origin': '*', 'content-type': 'application/json' }).end('{"error":{"code":"lost_by_test_proxy"}}');
      else res.writeHead(status, Object.fromEntries(answer.headers)).end(answerBody);
    })().catch((e: unknown) => res.writeHead(502).end(String(e)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const requests = (writeKey: string): WireRequest[] => seen.filter((r) => r.writeKey === writeKey);
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    events: (writeKey) => requests(writeKey).flatMap((r) => r.events),
    preflights: () => [...preflights],
    loseFirstAnswer: (writeKey) => void loseAnswer.add(writeKey),
  };
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

declare global {
  interface Window {
    // The buffered AnalyticsBrowser instance the test page creates; typed loosely on purpose:
    // the test drives the library's public API as a page script would.
    analytics: {
      page(): Promise<unknown>;
      track(event: string, properties?: Record<string, unknown>): Promise<unknown>;
      identify(userId: string, traits?: Record<string, unknown>): Promise<unknown>;
      user(): Promise<{ id(): string | null }>;
      ready(): Promise<unknown>;
    };
  }
}
