import { rejection, type RequestRejection } from '../errors.ts';

export type ReadBodyResult = { kind: 'ok'; bytes: Uint8Array } | RequestRejection;

/**
 * Reads a request body with a hard byte cap, decompressing `Content-Encoding: gzip` through
 * the web-standard DecompressionStream. The cap applies both to the bytes on the wire and to
 * the decompressed document; reading stops as soon as it is passed, so a gzip bomb costs at
 * most `maxBytes` plus one decompressor chunk of memory.
 */
export async function readBody(request: Request, maxBytes: number): Promise<ReadBodyResult> {
  const encoding = (request.headers.get('content-encoding') ?? 'identity').trim().toLowerCase();
  if (encoding !== 'identity' && encoding !== 'gzip' && encoding !== 'x-gzip') {
    return rejection(415, 'unsupported_encoding', `Content-Encoding ${JSON.stringify(encoding)} is not supported: send the body uncompressed or with Content-Encoding: gzip`);
  }
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) return tooLarge(maxBytes, `${declared} bytes`);
  if (request.body === null) return { kind: 'ok', bytes: new Uint8Array(0) };

  // With a declared length within the cap, HTTP framing bounds the body: read it in one call,
  // which skips the per-chunk stream reads (the hot path of small beacons). Otherwise (chunked),
  // read chunk by chunk and stop at the cap.
  const wire = Number.isFinite(declared) ? await readDeclared(request, maxBytes) : await readCapped(request.body, maxBytes);
  if (wire.kind === 'over') return tooLarge(maxBytes, 'the request body');
  if (wire.kind === 'error') return rejection(400, 'invalid_json', 'the request body could not be read completely: resend the request');
  if (encoding === 'identity') return { kind: 'ok', bytes: wire.bytes };

  const inflated = await readCapped(new Blob([wire.bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('gzip')), maxBytes);
  if (inflated.kind === 'over') return tooLarge(maxBytes, 'the decompressed body');
  if (inflated.kind === 'error') {
    return rejection(400, 'invalid_gzip', 'the body is not valid gzip (truncated or corrupt): compress the whole JSON document with gzip, or drop the Content-Encoding header');
  }
  return { kind: 'ok', bytes: inflated.bytes };
}

async function readDeclared(request: Request, maxBytes: number): Promise<Capped> {
  try {
    const bytes = new Uint8Array(await request.arrayBuffer());
    return bytes.byteLength > maxBytes ? { kind: 'over' } : { kind: 'ok', bytes };
  } catch {
    return { kind: 'error' };
  }
}

type Capped = { kind: 'ok'; bytes: Uint8Array } | { kind: 'over' } | { kind: 'error' };

async function readCapped(stream: ReadableStream<Uint8Array>, maxBytes: number): Promise<Capped> {
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
