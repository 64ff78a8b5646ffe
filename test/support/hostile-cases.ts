/**
 * One table of hostile and odd requests, sent to every edge runtime: the Node edge
 * (test/unit/edge/hostile-node-unit.test.ts), the Deno edge (test/integration/hostile-deno.test.ts)
 * and the Workers edge in workerd (test/workers/hostile-inputs.test.ts). Each case states the
 * status and JSON `error.code` every runtime must answer; where a runtime cannot answer the same,
 * `differs` says what it answers instead and why. docs/EDGE.md documents every code listed here
 * (checked by the Node test).
 *
 * Runtime-neutral (web APIs only): it runs inside workerd too. Runners must use the default
 * limits (MAX_BODY_BYTES 512 KiB, MAX_EVENTS_PER_BATCH 500, MAX_EVENT_BYTES 32 KiB) and the
 * write key {@link HOSTILE_WRITE_KEY}.
 */

export type EdgeRuntime = 'node' | 'deno' | 'workers';

/** Configured on every runtime's test edge (wrangler.toml's dev key). */
export const HOSTILE_WRITE_KEY = 'wk_demo';

export interface HostileRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Uint8Array;
}

export interface HostileOutcome {
  status: number;
  /** `error.code` of an error answer. */
  code?: string;
  /** Of a 2xx ingest answer: events accepted and rejected individually. */
  accepted?: number;
  rejected?: number;
  /** The `Allow` header (405). */
  allow?: string;
}

export interface HostileCase {
  name: string;
  build(): Promise<HostileRequest>;
  expect: HostileOutcome;
  /** Where a runtime answers otherwise, what it answers and why. */
  differs?: Partial<Record<EdgeRuntime, HostileOutcome & { reason: string }>>;
}

const enc = new TextEncoder();
const KIB = 1024;
const run = Math.random().toString(36).slice(2, 10);
let seq = 0;

/** A valid track event with a messageId unique to this run (shards and dedup stores persist). */
export function hostileTrack(over: Record<string, unknown> = {}): Record<string, unknown> {
  seq++;
  return { type: 'track', event: 'hostile', userId: `u-${seq % 5}`, messageId: `hostile-${run}-${seq}`, properties: { value: 1 }, ...over };
}

/** `bytes` gzipped as one member, with the web CompressionStream (every runtime has it). */
export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** `size` bytes of spaces, gzipped: about 1,000 times smaller on the wire. */
export async function gzipBomb(size: number): Promise<Uint8Array> {
  const chunk = new Uint8Array(1024 * 1024).fill(0x20);
  let left = size;
  // Streamed: workerd refuses a Blob over 128 MiB.
  const spaces = new ReadableStream<Uint8Array<ArrayBuffer>>({
    pull(controller) {
      if (left <= 0) return controller.close();
      controller.enqueue(chunk.slice(0, Math.min(left, chunk.byteLength)));
      left -= chunk.byteLength;
    },
  });
  return new Uint8Array(await new Response(spaces.pipeThrough(new CompressionStream('gzip'))).arrayBuffer());
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

const auth = (): Record<string, string> => ({ authorization: `Basic ${btoa(`${HOSTILE_WRITE_KEY}:`)}`, 'content-type': 'application/json' });

function post(path: string, body: string | Uint8Array, headers: Record<string, string> = {}): HostileRequest {
  return { method: 'POST', path, headers: { ...auth(), ...headers }, body: typeof body === 'string' ? enc.encode(body) : body };
}

const batchOf = (...events: unknown[]): string => JSON.stringify({ batch: events });

export const HOSTILE_CASES: readonly HostileCase[] = [
  // Malformed and odd JSON.
  { name: 'malformed JSON', build: async () => post('/v1/batch', '{"batch": [{"type":"track",'), expect: { status: 400, code: 'invalid_json' } },
  { name: 'an empty body', build: async () => post('/v1/batch', ''), expect: { status: 400, code: 'invalid_json' } },
  { name: 'a JSON array as the body', build: async () => post('/v1/batch', '[{"type":"track"}]'), expect: { status: 400, code: 'invalid_json' } },
  { name: 'batch that is not an array', build: async () => post('/v1/batch', '{"batch":"all"}'), expect: { status: 400, code: 'invalid_batch' } },
  {
    name: 'invalid UTF-8',
    build: async () => post('/v1/batch', concat(enc.encode('{"batch":[{"type":"track","userId":"u","event":"'), new Uint8Array([0xff, 0xfe]), enc.encode('"}]}'))),
    expect: { status: 400, code: 'invalid_utf8' },
  },
  { name: 'an overlong UTF-8 slash', build: async () => post('/v1/batch', concat(enc.encode('{"batch":[],"x":"'), new Uint8Array([0xc0, 0xaf]), enc.encode('"}'))), expect: { status: 400, code: 'invalid_utf8' } },
  { name: 'nesting 10,000 deep', build: async () => post('/v1/batch', `{"batch":[${'['.repeat(10_000)}${']'.repeat(10_000)}]}`), expect: { status: 400, code: 'nesting_too_deep' } },
  { name: 'a __proto__ key', build: async () => post('/v1/batch', batchOf({ ...hostileTrack(), properties: JSON.parse('{"__proto__":{"polluted":true}}') as unknown })), expect: { status: 400, code: 'forbidden_key' } },
  { name: 'an escaped constructor key', build: async () => post('/v1/batch', '{"\\u0063onstructor":{},"batch":[]}'), expect: { status: 400, code: 'forbidden_key' } },

  // Sizes.
  { name: 'a body over 512 KiB', build: async () => post('/v1/batch', batchOf(hostileTrack({ properties: { blob: 'x'.repeat(600 * KIB) } }))), expect: { status: 413, code: 'payload_too_large' } },
  { name: '501 events in a batch', build: async () => post('/v1/batch', batchOf(...Array.from({ length: 501 }, () => hostileTrack()))), expect: { status: 413, code: 'too_many_events' } },
  { name: 'a single event over 32 KiB', build: async () => post('/v1/track', JSON.stringify(hostileTrack({ properties: { blob: 'x'.repeat(40 * KIB) } }))), expect: { status: 413, code: 'event_too_large' } },
  { name: 'an event over 32 KiB in a batch', build: async () => post('/v1/batch', batchOf(hostileTrack(), hostileTrack({ properties: { blob: 'x'.repeat(40 * KIB) } }))), expect: { status: 200, accepted: 1, rejected: 1 } },

  // Compression.
  { name: 'a gzip bomb (64 MiB of spaces)', build: async () => post('/v1/batch', await gzipBomb(64 * KIB * KIB), { 'content-encoding': 'gzip' }), expect: { status: 413, code: 'payload_too_large' } },
  {
    name: 'two gzip members (concatenated .gz files)',
    build: async () => {
      const text = batchOf(hostileTrack(), hostileTrack());
      const half = text.length >> 1;
      return post('/v1/batch', concat(await gzip(enc.encode(text.slice(0, half))), await gzip(enc.encode(text.slice(half)))), { 'content-encoding': 'gzip' });
    },
    expect: { status: 200, accepted: 2, rejected: 0 },
  },
  {
    name: 'twenty gzip members, one per event',
    build: async () => {
      const events = Array.from({ length: 20 }, () => JSON.stringify(hostileTrack()));
      const pieces = ['{"batch":[', ...events.map((e, i) => (i === 0 ? e : `,${e}`)), ']}'];
      return post('/v1/batch', concat(...(await Promise.all(pieces.map((p) => gzip(enc.encode(p)))))), { 'content-encoding': 'gzip' });
    },
    expect: { status: 200, accepted: 20, rejected: 0 },
  },
  {
    name: 'a gzip member followed by a truncated one',
    build: async () => {
      const text = batchOf(hostileTrack());
      const second = await gzip(enc.encode(text.slice(10)));
      return post('/v1/batch', concat(await gzip(enc.encode(text.slice(0, 10))), second.subarray(0, second.byteLength - 6)), { 'content-encoding': 'gzip' });
    },
    expect: { status: 400, code: 'invalid_gzip' },
  },
  { name: 'gzip followed by junk', build: async () => post('/v1/batch', concat(await gzip(enc.encode(batchOf(hostileTrack()))), enc.encode('junk')), { 'content-encoding': 'gzip' }), expect: { status: 400, code: 'invalid_gzip' } },
  { name: 'truncated gzip', build: async () => post('/v1/batch', (await gzip(enc.encode(batchOf(hostileTrack())))).subarray(0, 25), { 'content-encoding': 'gzip' }), expect: { status: 400, code: 'invalid_gzip' } },
  { name: 'plain JSON labelled gzip', build: async () => post('/v1/batch', batchOf(hostileTrack()), { 'content-encoding': 'gzip' }), expect: { status: 400, code: 'invalid_gzip' } },
  { name: 'Content-Encoding: br', build: async () => post('/v1/batch', batchOf(hostileTrack()), { 'content-encoding': 'br' }), expect: { status: 415, code: 'unsupported_encoding' } },

  // Methods, paths, headers.
  { name: 'GET on /v1/batch', build: async () => ({ method: 'GET', path: '/v1/batch', headers: {} }), expect: { status: 405, code: 'method_not_allowed', allow: 'POST' } },
  { name: 'PUT with a body on /v1/track', build: async () => ({ ...post('/v1/track', JSON.stringify(hostileTrack())), method: 'PUT' }), expect: { status: 405, code: 'method_not_allowed', allow: 'POST' } },
  { name: 'DELETE on /v1/collect', build: async () => ({ method: 'DELETE', path: '/v1/collect', headers: {} }), expect: { status: 405, code: 'method_not_allowed', allow: 'POST, OPTIONS' } },
  { name: 'OPTIONS on /v1/batch (no CORS)', build: async () => ({ method: 'OPTIONS', path: '/v1/batch', headers: {} }), expect: { status: 405, code: 'method_not_allowed', allow: 'POST' } },
  { name: 'POST on /health', build: async () => post('/health', '{}'), expect: { status: 405, code: 'method_not_allowed', allow: 'GET' } },
  { name: 'an unknown path', build: async () => post('/v1/alias', '{}'), expect: { status: 404, code: 'not_found' } },
  { name: 'no write key', build: async () => ({ method: 'POST', path: '/v1/batch', headers: { 'content-type': 'application/json' }, body: enc.encode(batchOf(hostileTrack())) }), expect: { status: 401, code: 'unknown_write_key' } },
  { name: 'a write key named like a prototype member', build: async () => post('/v1/batch', JSON.stringify({ writeKey: 'hasOwnProperty', batch: [hostileTrack()] }), { authorization: '' }), expect: { status: 401, code: 'unknown_write_key' } },
  {
    name: '20 KiB of headers',
    build: async () => post('/v1/batch', batchOf(hostileTrack()), { 'x-padding': 'p'.repeat(20 * KIB) }),
    expect: { status: 431, code: 'header_too_large' },
  },

  // Values.
  { name: 'a bad date in a batch', build: async () => post('/v1/batch', batchOf(hostileTrack(), hostileTrack({ timestamp: 'yesterday' }))), expect: { status: 200, accepted: 1, rejected: 1 } },
  // Dates that do not exist are rejected per event (`invalid_event_time`), not rolled over into March by the runtime's date parser.
  { name: 'February 30th in a batch', build: async () => post('/v1/batch', batchOf(hostileTrack(), hostileTrack({ timestamp: '2024-02-30T10:00:00Z' }))), expect: { status: 200, accepted: 1, rejected: 1 } },
  // A sentAt in year 9999 would correct the event time to before 1970 (a window of 0000-01-01): rejected per event.
  { name: 'sentAt in year 9999', build: async () => post('/v1/batch', batchOf(hostileTrack(), hostileTrack({ timestamp: new Date().toISOString(), sentAt: '9999-12-31T23:59:59Z' }))), expect: { status: 200, accepted: 1, rejected: 1 } },
  { name: 'a bad date on a single event', build: async () => post('/v1/track', JSON.stringify(hostileTrack({ timestamp: '2024-13-01T00:00:00Z' }))), expect: { status: 400, code: 'invalid_event' } },
  // Out of the value bounds (docs/EDGE.md "Limits"): each rejected with its reason.
  { name: 'values of ±1e308', build: async () => post('/v1/batch', batchOf(hostileTrack({ properties: { value: 1e308 } }), hostileTrack({ properties: { value: -1e308 } }))), expect: { status: 200, accepted: 0, rejected: 2 } },
  { name: 'a value of 1e309 (Infinity once parsed)', build: async () => post('/v1/batch', batchOf(hostileTrack()).replace('"value":1', '"value":1e309')), expect: { status: 200, accepted: 1, rejected: 0 } },
  { name: 'NaN and Infinity as strings', build: async () => post('/v1/batch', batchOf(hostileTrack({ properties: { value: 'NaN' } }), hostileTrack({ properties: { revenue: 'Infinity' } }))), expect: { status: 200, accepted: 2, rejected: 0 } },
  // null means absent (analytics.js sends it), except where a value is required (`event`).
  { name: 'null fields', build: async () => post('/v1/batch', batchOf(hostileTrack({ userId: null, anonymousId: 'a-1' }), hostileTrack({ event: null }), hostileTrack({ properties: null }), hostileTrack({ context: null }))), expect: { status: 200, accepted: 3, rejected: 1 } },
  {
    name: 'control characters and markup in a path and an event name',
    build: async () => post('/v1/batch', batchOf(hostileTrack({ event: 'sign\u0000up\u001b[2J', context: { page: { path: '/a\u0007b/<script>alert(1)</script>\u202e' } } }))),
    expect: { status: 200, accepted: 1, rejected: 0 },
  },
];

/** What `runtime` must answer to `c`. */
export function expectedOn(c: HostileCase, runtime: EdgeRuntime): HostileOutcome {
  const d = c.differs?.[runtime];
  if (d === undefined) return c.expect;
  const { reason: _reason, ...outcome } = d;
  return outcome;
}

/** The parts of an answer the table compares; a non-JSON error body fails the comparison. */
export async function outcomeOf(res: Response, expected: HostileOutcome): Promise<HostileOutcome & { json: boolean }> {
  const text = await res.text();
  let body: { error?: { code?: unknown }; accepted?: unknown; rejected?: unknown } | undefined;
  try {
    body = text === '' ? undefined : (JSON.parse(text) as typeof body);
  } catch {
    body = undefined;
  }
  const out: HostileOutcome & { json: boolean } = { status: res.status, json: body !== undefined && (res.headers.get('content-type') ?? '').includes('application/json') };
  if (typeof body?.error?.code === 'string') out.code = body.error.code;
  if (expected.accepted !== undefined && typeof body?.accepted === 'number') out.accepted = body.accepted;
  if (expected.rejected !== undefined && Array.isArray(body?.rejected)) out.rejected = body.rejected.length;
  if (expected.allow !== undefined) out.allow = res.headers.get('allow') ?? '';
  return out;
}

/** A request of the table as a web `Request` against `origin`. */
export function toRequest(origin: string, r: HostileRequest): Request {
  return new Request(`${origin}${r.path}`, { method: r.method, headers: r.headers, ...(r.body !== undefined ? { body: r.body as Uint8Array<ArrayBuffer> } : {}) });
}
