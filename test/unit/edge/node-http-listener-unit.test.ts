/**
 * The Node fast path (edge/node/http-listener.ts) over real sockets, held to the Hono app's
 * answers: the same request sent to a twin edge served the way the Node edge was before (the
 * Hono app on @hono/node-server) must get the same status, JSON body and CORS / Retry-After
 * headers, and put the same rows and rejected records into the sinks. Plus what only a socket shows: keep-alive, the
 * connection closed after a refused upload, a client going away mid-body.
 */
import { getRequestListener } from '@hono/node-server';
import { createServer, request as httpRequest, Agent, type IncomingHttpHeaders, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type { IngestHttp } from '../../../edge/http-ingest.ts';
import { createNodeEdgeListener, rawHeaderLookup } from '../../../edge/node/http-listener.ts';
import { answered, basic, makeEdge, sentRows, T0, track, type TestEdge } from './helpers.ts';

const LIMITS = { MAX_BODY_BYTES: '65536', MAX_EVENTS_PER_BATCH: '10', MAX_EVENT_BYTES: '2048', COUNTRY_HEADER: 'cf-ipcountry', DIMENSIONS: 'path,country' };
const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function listen(listener: RequestListener): Promise<{ url: string; server: Server; connections: () => number }> {
  const server = createServer(listener);
  let connections = 0;
  server.on('connection', () => connections++);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, connections: () => connections };
}

function nodeListener(edge: TestEdge): RequestListener {
  return createNodeEdgeListener({ http: edge.http, fallback: getRequestListener(edge.app.fetch), countryHeader: edge.config.countryHeader });
}

interface Case {
  method?: string;
  path: string;
  body?: string | Uint8Array;
  headers?: Record<string, string>;
}

interface Outcome {
  status: number;
  body: unknown;
  headers: Record<string, string | undefined>;
}

const COMPARED_HEADERS = ['content-type', 'access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers', 'access-control-max-age', 'retry-after'];

async function outcome(res: Response): Promise<Outcome> {
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : (JSON.parse(text) as unknown), headers: Object.fromEntries(COMPARED_HEADERS.map((h) => [h, res.headers.get(h) ?? undefined])) };
}

const enc = new TextEncoder();
const wk = { authorization: basic('wk_a'), 'content-type': 'application/json' };
const batchOf = (...events: unknown[]) => JSON.stringify({ batch: events });

const CASES: Array<[string, () => Case]> = [
  ['a batch', () => ({ path: '/v1/batch', body: batchOf(track({ messageId: 'b1' }), track({ messageId: 'b2', context: { page: { path: '/x' } } })), headers: { ...wk, 'cf-ipcountry': 'de' } })],
  ['a batch with an invalid event', () => ({ path: '/v1/batch', body: batchOf(track({ messageId: 'ok1' }), { type: 'track', userId: 'u' }), headers: wk })],
  ['a gzipped batch', () => ({ path: '/v1/batch', body: new Uint8Array(gzipSync(batchOf(track({ messageId: 'gz' })))), headers: { ...wk, 'content-encoding': 'gzip' } })],
  ['a track event', () => ({ path: '/v1/track', body: JSON.stringify(track({ messageId: 't1' })), headers: wk })],
  ['a beacon', () => ({ path: '/v1/collect', body: JSON.stringify({ ...track({ messageId: 'c1' }), writeKey: 'wk_a' }), headers: { 'content-type': 'text/plain', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0' } })],
  ['a beacon with non-ASCII text', () => ({ path: '/v1/collect', body: JSON.stringify({ ...track({ messageId: 'c2', event: 'Bestellung — bestätigt 🎉' }), writeKey: 'wk_a' }), headers: { 'content-type': 'text/plain' } })],
  ['an analytics.js short path', () => ({ path: '/v1/t', body: JSON.stringify({ ...track({ messageId: 's1' }), writeKey: 'wk_a' }), headers: { 'content-type': 'text/plain' } })],
  ['a query string', () => ({ path: '/v1/collect?x=1', body: JSON.stringify({ ...track({ messageId: 'q1' }), writeKey: 'wk_a' }), headers: { 'content-type': 'text/plain' } })],
  ['malformed JSON', () => ({ path: '/v1/batch', body: '{"batch": [', headers: wk })],
  ['an empty body', () => ({ path: '/v1/batch', body: '', headers: wk })],
  ['malformed JSON on a beacon (CORS on errors)', () => ({ path: '/v1/collect', body: '{', headers: { 'content-type': 'text/plain' } })],
  ['a backslash escaping a non-ASCII character', () => ({ path: '/v1/collect', body: '{"type":"track","event":"\\é","userId":"u","writeKey":"wk_a"}', headers: { 'content-type': 'text/plain' } })],
  ['invalid UTF-8', () => ({ path: '/v1/batch', body: new Uint8Array([...enc.encode('{"batch":[{"type":"track","userId":"u","event":"'), 0xff, ...enc.encode('"}]}')]), headers: wk })],
  ['deep nesting', () => ({ path: '/v1/batch', body: `{"batch":[${'['.repeat(100)}${']'.repeat(100)}]}`, headers: wk })],
  ['an escaped __proto__ key', () => ({ path: '/v1/batch', body: '{"\\u005f\\u005fproto__":{"x":1},"batch":[]}', headers: wk })],
  ['a constructor key', () => ({ path: '/v1/batch', body: '{"batch":[{"type":"track","userId":"u","event":"e","constructor":{}}]}', headers: wk })],
  ['an oversized body', () => ({ path: '/v1/batch', body: batchOf(track({ properties: { blob: 'x'.repeat(70_000) } })), headers: wk })],
  ['a gzip bomb', () => ({ path: '/v1/batch', body: new Uint8Array(gzipSync(Buffer.alloc(4 * 1024 * 1024, 0x20), { level: 9 })), headers: { ...wk, 'content-encoding': 'gzip' } })],
  ['truncated gzip', () => ({ path: '/v1/batch', body: new Uint8Array(gzipSync(batchOf(track()))).slice(0, 20), headers: { ...wk, 'content-encoding': 'gzip' } })],
  ['an unsupported encoding', () => ({ path: '/v1/batch', body: batchOf(track()), headers: { ...wk, 'content-encoding': 'br' } })],
  ['too many events', () => ({ path: '/v1/batch', body: batchOf(...Array.from({ length: 11 }, () => track())), headers: wk })],
  ['an oversized single event', () => ({ path: '/v1/track', body: JSON.stringify(track({ properties: { blob: 'x'.repeat(3000) } })), headers: wk })],
  ['an invalid single event', () => ({ path: '/v1/track', body: JSON.stringify({ event: 'x' }), headers: wk })],
  ['an unknown write key', () => ({ path: '/v1/batch', body: batchOf(track()), headers: { ...wk, authorization: basic('wk_nope') } })],
  ['no write key', () => ({ path: '/v1/batch', body: batchOf(track()), headers: { 'content-type': 'application/json' } })],
  ['a CORS preflight', () => ({ method: 'OPTIONS', path: '/v1/collect' })],
  ['a preflight on a short path', () => ({ method: 'OPTIONS', path: '/v1/b' })],
  ['OPTIONS on a path without CORS', () => ({ method: 'OPTIONS', path: '/v1/batch' })],
  ['GET on an ingest path', () => ({ method: 'GET', path: '/v1/collect' })],
  ['an unknown path', () => ({ method: 'POST', path: '/v1/alias', body: '{}', headers: wk })],
  ['a trailing slash', () => ({ method: 'POST', path: '/v1/batch/', body: batchOf(track()), headers: wk })],
  ['health', () => ({ method: 'GET', path: '/health' })],
];

describe('Node fast path answers like the Hono app', () => {
  it.each(CASES)('%s', async (_what, build) => {
    const viaHono = makeEdge(LIMITS);
    const viaNode = makeEdge(LIMITS);
    const hono = await listen(getRequestListener(viaHono.app.fetch));
    const node = await listen(nodeListener(viaNode));
    const c = build();
    const init = { method: c.method ?? 'POST', headers: c.headers ?? {}, ...(c.body !== undefined ? { body: c.body as BodyInit } : {}) };
    const expected = await outcome(await answered(viaHono, fetch(`${hono.url}${c.path}`, init)));
    const actual = await outcome(await answered(viaNode, fetch(`${node.url}${c.path}`, init)));
    // @hono/node-server labels even a 204 without body text/plain; the fast path sends no type.
    if (expected.status === 204) expected.headers['content-type'] = undefined;
    expect(actual).toEqual(expected);
    // And the same events reached the sinks.
    expect(sentRows(viaNode.partials)).toEqual(sentRows(viaHono.partials));
    expect(viaNode.rejected.records).toEqual(viaHono.rejected.records);
  });

  it('counts refused requests in /health like the Hono app', async () => {
    const edge = makeEdge(LIMITS);
    const { url } = await listen(nodeListener(edge));
    await fetch(`${url}/v1/batch`, { method: 'POST', headers: wk, body: '{' });
    await fetch(`${url}/v1/collect`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
    const health = (await (await fetch(`${url}/health`)).json()) as { refusedRequests: Record<string, number> };
    expect(health.refusedRequests).toEqual({ invalid_json: 1, unknown_write_key: 1 });
    expect(await (await edge.app.request('/health')).json()).toMatchObject({ refusedRequests: { invalid_json: 1, unknown_write_key: 1 } });
  });
});

/** A raw HTTP/1.1 request through `agent`, for what fetch hides (connections, chunked uploads, aborts). */
function raw(url: string, o: { method?: string; path: string; headers?: Record<string, string>; agent?: Agent; chunks?: Uint8Array[] }): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${o.path}`, { method: o.method ?? 'POST', headers: o.headers ?? {}, ...(o.agent ? { agent: o.agent } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    // A refused upload may be cut off by the server while we still write: that is the point.
    req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' || e.code === 'ECONNRESET' ? undefined : reject(e)));
    for (const chunk of o.chunks ?? []) req.write(chunk);
    req.end();
  });
}

describe('Node fast path on the wire', () => {
  it('keeps connections alive across beacons', async () => {
    const edge = makeEdge(LIMITS);
    const { url, connections } = await listen(nodeListener(edge));
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 3; i++) {
      const res = await raw(url, { path: '/v1/collect', headers: { 'content-type': 'text/plain' }, agent, chunks: [enc.encode(JSON.stringify({ ...track(), writeKey: 'wk_a' }))] });
      expect(res.status).toBe(202);
      expect(res.headers.connection).toBe('keep-alive');
      expect(res.headers['content-length']).toBe(String(Buffer.byteLength(res.body)));
    }
    agent.destroy();
    expect(connections()).toBe(1);
  });

  it('answers 413 to a chunked upload past MAX_BODY_BYTES, closes that connection and keeps serving', async () => {
    const edge = makeEdge(LIMITS);
    const { url } = await listen(nodeListener(edge));
    const chunks = Array.from({ length: 40 }, () => new Uint8Array(8192).fill(0x20));
    const res = await raw(url, { path: '/v1/batch', headers: { ...wk, 'transfer-encoding': 'chunked' }, chunks });
    expect(res.status).toBe(413);
    expect(res.headers.connection).toBe('close');
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'payload_too_large' } });
    const next = await answered(edge, fetch(`${url}/v1/batch`, { method: 'POST', headers: wk, body: batchOf(track()) }));
    expect(next.status).toBe(200);
  });

  it('refuses a declared Content-Length past the cap before reading the body', async () => {
    const edge = makeEdge(LIMITS);
    const { url } = await listen(nodeListener(edge));
    const res = await raw(url, { path: '/v1/collect', headers: { 'content-type': 'text/plain', 'content-length': '100000' }, chunks: [enc.encode('{"a":1}')] });
    expect(res.status).toBe(413);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers.connection).toBe('close');
  });

  it('survives a client that goes away mid-body, and counts nothing of it', async () => {
    const edge = makeEdge(LIMITS);
    const { url } = await listen(nodeListener(edge));
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${url}/v1/batch`, { method: 'POST', headers: { ...wk, 'content-length': '5000' } });
      req.on('error', () => resolve());
      req.write('{"batch":[');
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 20);
    });
    const res = await answered(edge, fetch(`${url}/v1/batch`, { method: 'POST', headers: wk, body: batchOf(track({ messageId: 'after-abort' })) }));
    expect(res.status).toBe(200);
    await edge.flusher.flushNow();
    expect(sentRows(edge.partials).reduce((n, r) => n + r.partial.count, 0)).toBe(1);
  });

  it('answers 500 internal_error, as the Hono app does, when the handler throws', async () => {
    const edge = makeEdge(LIMITS);
    const failing: IngestHttp = { ...edge.http, ingest: () => Promise.reject(new Error('bug')) };
    const { url } = await listen(createNodeEdgeListener({ http: failing, fallback: getRequestListener(edge.app.fetch), countryHeader: undefined }));
    const res = await fetch(`${url}/v1/batch`, { method: 'POST', headers: wk, body: batchOf(track()) });
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ error: { code: 'internal_error' } });
  });

  it('answers HEAD /health through the fallback', async () => {
    const edge = makeEdge(LIMITS);
    const { url } = await listen(nodeListener(edge));
    const res = await raw(url, { method: 'HEAD', path: '/health' });
    expect(res.status).toBe(200);
    expect(res.body).toBe('');
  });

  it('takes the beacon user agent and the trusted country from the request headers', async () => {
    const edge = makeEdge({ ...LIMITS, DIMENSIONS: 'browser,country' });
    const { url } = await listen(nodeListener(edge));
    const res = await fetch(`${url}/v1/collect`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'user-agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0', 'cf-ipcountry': 'nl' },
      body: JSON.stringify({ type: 'track', event: 'e', userId: 'u', writeKey: 'wk_a', timestamp: new Date(T0).toISOString() }),
    });
    expect(res.status).toBe(202);
    await edge.flusher.flushNow();
    expect(sentRows(edge.partials)[0]?.dimensions).toEqual([
      ['browser', 'Firefox'],
      ['country', 'NL'],
    ]);
  });
});

describe('rawHeaderLookup', () => {
  it('reads headers like a web Headers object: any case, repeats joined', () => {
    const raw = ['Content-Type', 'text/plain', 'X-Country', 'de', 'x-country', 'fr', 'Authorization', 'Basic a'];
    const headers = new Headers();
    for (let i = 0; i < raw.length; i += 2) headers.append(raw[i] as string, raw[i + 1] as string);
    const lookup = rawHeaderLookup(raw);
    for (const name of ['content-type', 'X-COUNTRY', 'authorization', 'user-agent']) expect(lookup.get(name)).toBe(headers.get(name));
  });
});
