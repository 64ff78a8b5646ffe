/**
 * Slow and stalled uploads against the Deno edge (edge/deno/main.ts in a real Deno process, the
 * npm-shipped binary, flushing to a gateway app in this process): Deno.serve bounds neither, so
 * the edge's body limiter (edge/body/body-limits.ts) does. Small limits here: BODY_TIMEOUT_MS 2 s,
 * MAX_CONNECTIONS 8 bodies being read at once, MAX_INFLIGHT_BODY_BYTES 1 MiB.
 */
import { serve, type ServerType } from '@hono/node-server';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayApp } from '../../core/gateway/app.ts';
import type { PipelineSink } from '../../shared/ports/pipeline-sink.ts';
import { silentLogger } from '../../core/log.ts';
import { memoryOf, startDenoEdge, type DenoEdge } from './helpers/deno-edge.ts';

const SECRET = 'deno-limits-gateway-secret-0123456789abcdef';
const WRITE_KEY = 'wk_limits';
const BODY_TIMEOUT_MS = 2000;
const MAX_CONNECTIONS = 8;
const MAX_BODY_BYTES = 512 * 1024;
const MAX_INFLIGHT_BODY_BYTES = 1024 * 1024;

/** A client's patience: well past the body timeout, short enough to keep a failing run quick. */
const GIVE_UP_MS = BODY_TIMEOUT_MS + 5000;

const producer: PipelineSink = { sendPartials: async () => undefined, sendRejected: async () => undefined };
let gatewayServer: ServerType;
let deno: DenoEdge;
let port = 0;

beforeAll(async () => {
  const app = createGatewayApp({ keys: new Map([['deno-limits', SECRET]]), producer, logger: silentLogger() });
  gatewayServer = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => gatewayServer.once('listening', () => resolve()));
  const gatewayUrl = `http://127.0.0.1:${(gatewayServer.address() as AddressInfo).port}`;
  deno = await startDenoEdge({
    TRIBUTARY_WRITE_KEYS: `${WRITE_KEY}:demo`,
    PSEUDONYM_SALT: 'deno-limits-salt-0123456789',
    SALT_SOURCE: 'static',
    FLUSH_INTERVAL_MS: '20',
    GATEWAY_URL: gatewayUrl,
    EDGE_ID: 'deno-limits',
    GATEWAY_SIGNING_KEY: SECRET,
    BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
    MAX_CONNECTIONS: String(MAX_CONNECTIONS),
    MAX_BODY_BYTES: String(MAX_BODY_BYTES),
    MAX_INFLIGHT_BODY_BYTES: String(MAX_INFLIGHT_BODY_BYTES),
  });
  port = Number(new URL(deno.url).port);
}, 60_000);

afterAll(async () => {
  await deno?.stop();
  await new Promise<void>((resolve) => (gatewayServer ? gatewayServer.close(() => resolve()) : resolve()));
});

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  code: string | undefined;
  /** Ms from the headers being sent to the answer. */
  afterMs: number;
}

/**
 * An upload over a raw socket: headers declaring `declared` bytes, then `first` bytes at once,
 * then (with `trickleMs`) one more byte every `trickleMs`, never the whole body. Resolves with
 * the answer, or undefined when the connection closed without one.
 */
function upload(o: { declared: number; first: number; trickleMs?: number }): { socket: Socket; answer: Promise<RawAnswer | undefined> } {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const started = Date.now();
  let received = Buffer.alloc(0);
  let trickle: ReturnType<typeof setInterval> | undefined;
  const answer = new Promise<RawAnswer | undefined>((resolve) => {
    const finish = (a: RawAnswer | undefined) => {
      clearInterval(trickle);
      socket.destroy();
      resolve(a);
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const text = received.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const length = Number(headers['content-length'] ?? NaN);
      const body = received.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1'));
      if (!Number.isFinite(length) || body.byteLength < length) return;
      const parsed = JSON.parse(body.subarray(0, length).toString('utf8')) as { error?: { code?: string } };
      finish({ status: Number(statusLine.split(' ')[1]), headers, code: parsed.error?.code, afterMs: Date.now() - started });
    });
    socket.on('close', () => finish(undefined));
    // No answer by then: the upload was held without bound (the client gives up, undefined).
    setTimeout(() => finish(undefined), GIVE_UP_MS).unref();
  });
  socket.write(
    `POST /v1/batch HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Basic ${btoa(`${WRITE_KEY}:`)}\r\ncontent-type: application/json\r\ncontent-length: ${o.declared}\r\n\r\n`,
  );
  if (o.first > 0) socket.write(Buffer.alloc(o.first, 0x20));
  if (o.trickleMs !== undefined) trickle = setInterval(() => socket.write(' '), o.trickleMs);
  return { socket, answer };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('slow and stalled uploads on the Deno edge', () => {
  it('answers a body trickling one byte every 200 ms with 408 body_timeout once BODY_TIMEOUT_MS has passed', { timeout: 15_000 }, async () => {
    const { answer } = upload({ declared: 1000, first: 1, trickleMs: 200 });
    const a = await answer;
    expect(a).toMatchObject({ status: 408, code: 'body_timeout' });
    expect(a!.afterMs).toBeGreaterThanOrEqual(BODY_TIMEOUT_MS - 100);
    // Without the timeout the 1000-byte body would take 200 s: generous slack for a loaded machine.
    expect(a!.afterMs).toBeLessThan(BODY_TIMEOUT_MS + 5000);
  });

  it(`holds ${MAX_CONNECTIONS} stalled uploads and answers the next one 503 overloaded with Retry-After at once (MAX_CONNECTIONS)`, { timeout: 15_000 }, async () => {
    const held = Array.from({ length: MAX_CONNECTIONS }, () => upload({ declared: 1000, first: 1 }));
    // Let the edge start reading all of them.
    await sleep(500);
    const extra = upload({ declared: 1000, first: 1 });
    const refused = await extra.answer;
    expect(refused).toMatchObject({ status: 503, code: 'overloaded', headers: { 'retry-after': '1' } });
    expect(refused!.afterMs).toBeLessThan(BODY_TIMEOUT_MS);
    // The first ones were held, not refused: they end with the body timeout.
    const answers = await Promise.all(held.map((h) => h.answer));
    expect(answers.map((a) => a && `${a.status} ${a.code}`)).toEqual(Array.from({ length: MAX_CONNECTIONS }, () => '408 body_timeout'));
  });

  it('reserves declared lengths: past MAX_INFLIGHT_BODY_BYTES, a stalled upload is answered 503 overloaded before it sends its bytes', { timeout: 15_000 }, async () => {
    // Two bodies of MAX_BODY_BYTES fill the 1 MiB budget.
    const held = [upload({ declared: MAX_BODY_BYTES, first: 1 }), upload({ declared: MAX_BODY_BYTES, first: 1 })];
    await sleep(500);
    const refused = await upload({ declared: MAX_BODY_BYTES, first: 1 }).answer;
    expect(refused).toMatchObject({ status: 503, code: 'overloaded', headers: { 'retry-after': '1' } });
    expect(refused!.afterMs).toBeLessThan(BODY_TIMEOUT_MS);
    const answers = await Promise.all(held.map((h) => h.answer));
    expect(answers.map((a) => a && `${a.status} ${a.code}`)).toEqual(['408 body_timeout', '408 body_timeout']);
  });

  it('200 stalled uploads of almost MAX_BODY_BYTES each: the process grows by far less than they would hold', { timeout: 15_000 }, async () => {
    const before = memoryOf(deno.child.pid!);
    // Each sends 500 KiB of its declared 512 KiB and stalls: 100 MB held if nothing bounded them.
    const uploads = Array.from({ length: 200 }, () => upload({ declared: MAX_BODY_BYTES, first: 500 * 1024 }));
    const answers = await Promise.all(uploads.map((u) => u.answer));
    const after = memoryOf(deno.child.pid!);
    const counts: Record<string, number> = {};
    for (const a of answers) {
      const key = a ? `${a.status} ${a.code}` : 'closed';
      counts[key] = (counts[key] ?? 0) + 1;
    }
    // At most two fit the budget at once; every other one is refused, none is left unanswered.
    // (Generous: on a loaded machine some may arrive after the first two timed out.)
    expect(counts.closed).toBeUndefined();
    // At least one held: the bodies of the earlier tests were given back to the budget.
    expect(counts['408 body_timeout'] ?? 0).toBeGreaterThanOrEqual(1);
    expect(counts['408 body_timeout'] ?? 0).toBeLessThanOrEqual(20);
    expect(counts['503 overloaded'] ?? 0).toBeGreaterThanOrEqual(180);
    expect(after.peak - before.rss).toBeLessThan(60);
  });
});
