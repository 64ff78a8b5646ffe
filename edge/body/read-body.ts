import { rejection, type RequestRejection } from '../errors.ts';

export type ReadBodyResult = { kind: 'ok'; bytes: Uint8Array } | RequestRejection;

/**
 * The bytes of a body as sent, read up to a cap: `over` as soon as more than the cap arrived;
 * `none` when the request has no body at all (a web `Request` without one).
 */
export type WireRead = { kind: 'ok'; bytes: Uint8Array } | { kind: 'over' } | { kind: 'error' } | { kind: 'none' };

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
 * most `maxBytes` plus one decompressor chunk of memory.
 */
export function readBody(request: Request, maxBytes: number): Promise<ReadBodyResult> {
  return readBodySource(requestBodySource(request), maxBytes);
}

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
  if (wire.kind === 'none') return { kind: 'ok', bytes: new Uint8Array(0) };
  if (encoding === 'identity') return { kind: 'ok', bytes: wire.bytes };

  const inflated = await readCapped(new Blob([wire.bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('gzip')), maxBytes);
  if (inflated.kind === 'over') return tooLarge(maxBytes, 'the decompressed body');
  if (inflated.kind === 'error') {
    return rejection(400, 'invalid_gzip', 'the body is not valid gzip (truncated or corrupt): compress the whole JSON document with gzip, or drop the Content-Encoding header');
  }
  return { kind: 'ok', bytes: inflated.bytes };
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

async function readDeclared(request: Request, maxBytes: number): Promise<Exclude<WireRead, { kind: 'none' }>> {
  try {
    const bytes = new Uint8Array(await request.arrayBuffer());
    return bytes.byteLength > maxBytes ? { kind: 'over' } : { kind: 'ok', bytes };
  } catch {
    return { kind: 'error' };
  }
}

async function readCapped(stream: ReadableStream<Uint8Array>, maxBytes: number): Promise<Exclude<WireRead, { kind: 'none' }>> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        // Stop pulling: cancelling also stops the decompressor from inflating further.
        await reader.cancel().catch(() => undefined);
        return { kind: 'over' };
      }
      chunks.push(value);
    }
  } catch {
    return { kind: 'error' };
  }
  if (chunks.length === 1 && chunks[0] !== undefined) return { kind: 'ok', bytes: chunks[0] };
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.byteLength;
  }
  return { kind: 'ok', bytes };
}

function tooLarge(maxBytes: number, what: string): RequestRejection {
  return rejection(413, 'payload_too_large', `${what} exceeds the limit of ${maxBytes} bytes (MAX_BODY_BYTES, applied after gzip decompression): split the events into smaller batches`);
}
