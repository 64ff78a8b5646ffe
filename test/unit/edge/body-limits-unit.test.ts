/**
 * The runtime-neutral body limiter the Deno edge serves with (edge/body/body-limits.ts), on web
 * `Request`s whose bodies this test controls: timeout, bodies being read, bytes held, release.
 * The same against a real Deno process: test/integration/deno-body-limits.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { createBodyLimiter } from '../../../edge/body/body-limits.ts';
import { readBodySource } from '../../../edge/body/read-body.ts';

/** A POST whose body sends `first` and then nothing until `end()`; `cancelled` once the reader gave up. */
function stalledRequest(first: Uint8Array, declared?: number) {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const state = { cancelled: false };
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      c.enqueue(first);
    },
    cancel() {
      state.cancelled = true;
    },
  });
  const headers: Record<string, string> = declared === undefined ? {} : { 'content-length': String(declared) };
  const request = new Request('http://edge.test/v1/batch', { method: 'POST', body, headers, duplex: 'half' } as RequestInit);
  return { request, state, end: (rest: Uint8Array) => (controller.enqueue(rest), controller.close()) };
}

const bytes = (n: number) => new Uint8Array(n).fill(0x20);

describe('body limiter', () => {
  it('answers a body not complete within the timeout 408 body_timeout and cancels it', { timeout: 5000 }, async () => {
    const limiter = createBodyLimiter({ bodyTimeoutMs: 100, maxConnections: 10, maxInflightBodyBytes: 1 << 20 });
    const stalled = stalledRequest(bytes(10), 100);
    const body = limiter.body(stalled.request);
    const result = await readBodySource(body, 1000);
    expect(result).toMatchObject({ kind: 'reject', status: 408, code: 'body_timeout' });
    expect(stalled.state.cancelled).toBe(true);
    body.release();
    expect(limiter.stats()).toEqual({ reading: 0, heldBytes: 0 });
  });

  it('reads a body that completes in time, holding its bytes until release', async () => {
    const limiter = createBodyLimiter({ bodyTimeoutMs: 5000, maxConnections: 10, maxInflightBodyBytes: 1 << 20 });
    const r = stalledRequest(bytes(10));
    const body = limiter.body(r.request);
    const reading = readBodySource(body, 1000);
    r.end(bytes(5));
    expect(await reading).toMatchObject({ kind: 'ok', bytes: bytes(15) });
    expect(limiter.stats()).toEqual({ reading: 0, heldBytes: 15 });
    body.release();
    expect(limiter.stats().heldBytes).toBe(0);
  });

  it('refuses one body more than maxConnections being read: 503 overloaded naming MAX_CONNECTIONS', async () => {
    const limiter = createBodyLimiter({ bodyTimeoutMs: 5000, maxConnections: 2, maxInflightBodyBytes: 1 << 20 });
    const held = [stalledRequest(bytes(1)), stalledRequest(bytes(1))];
    const reads = held.map((h) => readBodySource(limiter.body(h.request), 1000));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(limiter.stats().reading).toBe(2);
    const extra = stalledRequest(bytes(1));
    const refused = await readBodySource(limiter.body(extra.request), 1000);
    expect(refused).toMatchObject({ kind: 'reject', status: 503, code: 'overloaded', retryAfterS: 1 });
    expect(refused.kind === 'reject' && refused.message).toContain('MAX_CONNECTIONS');
    expect(extra.state.cancelled).toBe(true);
    for (const h of held) h.end(bytes(1));
    expect((await Promise.all(reads)).map((r) => r.kind)).toEqual(['ok', 'ok']);
  });

  it('reserves declared lengths against maxInflightBodyBytes: the next body is refused before it is read', async () => {
    const limiter = createBodyLimiter({ bodyTimeoutMs: 5000, maxConnections: 10, maxInflightBodyBytes: 1000 });
    const first = stalledRequest(bytes(1), 800);
    const firstBody = limiter.body(first.request);
    const reading = readBodySource(firstBody, 1000);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(limiter.stats().heldBytes).toBe(800);
    const second = stalledRequest(bytes(1), 300);
    const refused = await readBodySource(limiter.body(second.request), 1000);
    expect(refused).toMatchObject({ kind: 'reject', status: 503, code: 'overloaded', retryAfterS: 1 });
    first.end(bytes(799));
    expect(await reading).toMatchObject({ kind: 'ok' });
    firstBody.release();
    // Given back: the same request now fits.
    const again = stalledRequest(bytes(300), 300);
    again.end(new Uint8Array(0));
    expect(await readBodySource(limiter.body(again.request), 1000)).toMatchObject({ kind: 'ok' });
  });
});
