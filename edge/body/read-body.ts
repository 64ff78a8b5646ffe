import { rejection, type RequestRejection } from '../errors.ts';
import { concatBytes as concat, readCapped, type CappedRead } from '../../shared/capped-read.ts';

export type ReadBodyResult = { kind: 'ok'; bytes: Uint8Array } | RequestRejection;

/**
 * The bytes of a body as sent, read up to a cap: `over` as soon as more than the cap arrived;
 * `none` when the request has no body at all (a web `Request` without one). Sources that
 * enforce their own limits (the Node fast path, edge/body/body-limits.ts) also answer `busy`
 * (too many body bytes, or bodies, held by the process at once) and `timeout` (the body did not
 * arrive in time).
 */
export type WireRead =
  | { kind: 'ok'; bytes: Uint8Array }
  | { kind: 'over' }
  | { kind: 'error' }
  | { kind: 'none' }
  // `limit`: the setting that was reached (default MAX_INFLIGHT_BODY_BYTES).
  | { kind: 'busy'; limit?: 'MAX_INFLIGHT_BODY_BYTES' | 'MAX_CONNECTIONS' }
  | { kind: 'timeout'; afterMs: number };

/**
 * A request body as each runtime hands it over: two headers and a capped read of the bytes on
 * the wire. `requestBodySource` adapts a web `Request`; the Node fast path adapts node:http's
 * request directly (edge/node/http-listener.ts). Limits, decompression and error answers are
 * {@link readBodySource}'s, the same for every source.
 */
export interface BodySource {
  /** The `Content-Encoding` header, or null. */
  readonly contentEncoding: string | null;
  /** The `Content-Length` header, or null (chunked). */
  readonly contentLength: string | null;
  /** Reads the body as sent; stops (`over`) as soon as more than `maxBytes` arrived. Never throws. */
  read(maxBytes: number): Promise<WireRead>;
}

/**
 * Reads a request body with a hard byte cap, decompressing `Content-Encoding: gzip` through
 * the web-standard DecompressionStream. The cap applies both to the bytes on the wire and to
 * the decompressed document; reading stops as soon as it is passed, so a gzip bomb costs at
 * most `maxBytes` plus what one {@link GZIP_SLICE_BYTES} slice inflates to (about 1 MiB).
 */
export function readBody(request: Request, maxBytes: number): Promise<ReadBodyResult> {
  return readBodySource(requestBodySource(request), maxBytes);
}

/** Seconds a client waits after `503 overloaded` for too many bodies in flight. */
const BUSY_RETRY_AFTER_S = 1;

/** {@link readBody} for any {@link BodySource}: encoding check, declared and streamed caps, gzip. */
export async function readBodySource(source: BodySource, maxBytes: number): Promise<ReadBodyResult> {
  const encoding = (source.contentEncoding ?? 'identity').trim().toLowerCase();
  if (encoding !== 'identity' && encoding !== 'gzip' && encoding !== 'x-gzip') {
    return rejection(415, 'unsupported_encoding', `Content-Encoding ${JSON.stringify(encoding)} is not supported: send the body uncompressed or with Content-Encoding: gzip`);
  }
  const declared = Number(source.contentLength ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) return tooLarge(maxBytes, `${declared} bytes`);

  const wire = await source.read(maxBytes);
  if (wire.kind === 'over') return tooLarge(maxBytes, 'the request body');
  if (wire.kind === 'error') return rejection(400, 'invalid_json', 'the request body could not be read completely: resend the request');
  if (wire.kind === 'busy') {
    return rejection(503, 'overloaded', `the edge is receiving too many request bodies at once (${wire.limit ?? 'MAX_INFLIGHT_BODY_BYTES'}): retry after the Retry-After delay`, { retryAfterS: BUSY_RETRY_AFTER_S });
  }
  if (wire.kind === 'timeout') {
    return rejection(408, 'body_timeout', `the request body did not arrive within ${wire.afterMs} ms (BODY_TIMEOUT_MS): send the whole body at once, and smaller batches on slow connections`);
  }
  if (wire.kind === 'none') return { kind: 'ok', bytes: new Uint8Array(0) };
  if (encoding === 'identity') return { kind: 'ok', bytes: wire.bytes };

  const inflated = await inflateGzip(wire.bytes, maxBytes);
  if (inflated.kind === 'over') return tooLarge(maxBytes, 'the decompressed body');
  if (inflated.kind === 'error') {
    return rejection(400, 'invalid_gzip', `the body is not valid gzip (truncated, corrupt, or more than ${MAX_GZIP_MEMBERS} gzip members): compress the whole JSON document with gzip, or drop the Content-Encoding header`);
  }
  return { kind: 'ok', bytes: inflated.bytes };
}

/**
 * Compressed bytes fed to the decompressor at a time. Deflate expands at most ~1032:1, so one
 * slice inflates to at most ~1 MiB: some runtimes (Deno) inflate a whole input chunk before
 * anything can be read, and a gzip bomb handed over in one piece cost its full size in memory.
 */
export const GZIP_SLICE_BYTES = 1024;

/** Gzip members one body may hold; more are refused (400 invalid_gzip) on every runtime. */
export const MAX_GZIP_MEMBERS = 64;

/**
 * Offsets that look like a member header but are not a member boundary, tried per body before
 * it is refused: each costs one inflation capped at `maxBytes`, so a body crafted with many
 * such offsets costs at most this many.
 */
const MAX_FALSE_MEMBER_STARTS = 16;

export type InflateResult = CappedRead & {
  /** Compressed bytes handed to decompressors, summed over attempts: shows how early the cap stopped the work. */
  fed: number;
};

/**
 * Gzip -> bytes, at most `maxBytes` of output (`over` past it), fed in slices of
 * {@link GZIP_SLICE_BYTES} so that neither memory nor work outgrows the cap.
 *
 * Several gzip members one after another (what `cat a.gz b.gz` or a compressor that flushes
 * members writes) are one document, their contents concatenated, as `gzip -d` reads them (RFC
 * 1952 2.2; ADR 0016). Runtimes disagree here: Node's DecompressionStream reads every member,
 * Deno's and workerd's fail after the first, and none says where a member ended. So members
 * are split here, the same way everywhere: a member ends at the first offset where a gzip
 * header (1f 8b 08) starts and the bytes before it inflate on their own (the trailer checks
 * CRC-32 and length, so only a true end does). At most {@link MAX_GZIP_MEMBERS} members.
 */
export async function inflateGzip(bytes: Uint8Array, maxBytes: number): Promise<InflateResult> {
  if (bytes.byteLength === 0) return { kind: 'error', fed: 0 };
  const parts: Uint8Array[] = [];
  let total = 0;
  let fed = 0;
  let falseStarts = 0;
  let start = 0;
  for (let members = 1; start < bytes.byteLength; members++) {
    if (members > MAX_GZIP_MEMBERS) return { kind: 'error', fed };
    const rest = bytes.subarray(start);
    let member: InflateResult | undefined;
    let end = rest.byteLength;
    for (let k = nextGzipHeader(rest, MIN_GZIP_MEMBER_BYTES); k > 0 && member === undefined; k = nextGzipHeader(rest, k + 1)) {
      const prefix = await inflateSliced(rest.subarray(0, k), maxBytes - total);
      fed += prefix.fed;
      // Past the cap already within this prefix: the whole document is too.
      if (prefix.kind === 'over') return { kind: 'over', fed };
      if (prefix.kind === 'ok') {
        member = prefix;
        end = k;
      } else if (++falseStarts > MAX_FALSE_MEMBER_STARTS) {
        return { kind: 'error', fed };
      }
    }
    // No boundary found: the rest is the last member.
    if (member === undefined) {
      member = await inflateSliced(rest, maxBytes - total);
      fed += member.fed;
    }
    if (member.kind !== 'ok') return { kind: member.kind, fed };
    parts.push(member.bytes);
    total += member.bytes.byteLength;
    start += end;
  }
  return { kind: 'ok', bytes: concat(parts, total), fed };
}

/** A gzip header (10 bytes), an empty deflate stream (2) and the trailer (8). */
const MIN_GZIP_MEMBER_BYTES = 20;

/** The next offset >= `from` where a gzip member header (1f 8b, method 8 = deflate) starts, or -1. */
function nextGzipHeader(bytes: Uint8Array, from: number): number {
  for (let k = bytes.indexOf(0x1f, from); k >= 0 && k + 2 < bytes.byteLength; k = bytes.indexOf(0x1f, k + 1)) {
    if (bytes[k + 1] === 0x8b && bytes[k + 2] === 0x08) return k;
  }
  return -1;
}

async function inflateSliced(bytes: Uint8Array, maxBytes: number): Promise<InflateResult> {
  const decompressor = new DecompressionStream('gzip');
  const writer = decompressor.writable.getWriter();
  let fed = 0;
  let stopped = false;
  // Written by hand rather than piped: a pipe into a decompressor that fails leaves a rejected
  // promise nobody can handle (workerd reports it as uncaught). Each slice goes in only once the
  // previous one is taken (workerd's writable side never signals backpressure through `ready`),
  // so at most a slice or two are inflated ahead of the reader, which stops at the cap.
  const writing = (async () => {
    for (let at = 0; at < bytes.byteLength && !stopped; at += GZIP_SLICE_BYTES) {
      const slice = bytes.slice(at, at + GZIP_SLICE_BYTES);
      fed += slice.byteLength;
      await writer.write(slice);
    }
    if (!stopped) await writer.close();
  })().catch(() => undefined);
  const out = await readCapped(decompressor.readable, maxBytes);
  stopped = true;
  if (out.kind !== 'ok') await writer.abort().catch(() => undefined);
  await writing;
  return { ...out, fed };
}

/** A web `Request` as a {@link BodySource}. */
export function requestBodySource(request: Request): BodySource {
  const contentLength = request.headers.get('content-length');
  return {
    contentEncoding: request.headers.get('content-encoding'),
    contentLength,
    read(maxBytes) {
      if (request.body === null) return Promise.resolve({ kind: 'none' });
      // With a declared length within the cap, HTTP framing bounds the body: read it in one call,
      // which skips the per-chunk stream reads (the hot path of small beacons). Otherwise
      // (chunked), read chunk by chunk and stop at the cap.
      return Number.isFinite(Number(contentLength ?? NaN)) ? readDeclared(request, maxBytes) : readCapped(request.body, maxBytes);
    },
  };
}

async function readDeclared(request: Request, maxBytes: number): Promise<CappedRead> {
  try {
    const bytes = new Uint8Array(await request.arrayBuffer());
    return bytes.byteLength > maxBytes ? { kind: 'over' } : { kind: 'ok', bytes };
  } catch {
    return { kind: 'error' };
  }
}

function tooLarge(maxBytes: number, what: string): RequestRejection {
  return rejection(413, 'payload_too_large', `${what} exceeds the limit of ${maxBytes} bytes (MAX_BODY_BYTES, applied after gzip decompression): split the events into smaller batches`);
}
