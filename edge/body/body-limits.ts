import { concatBytes, createByteBudget, type ByteBudget } from '../../shared/capped-read.ts';
import type { BodySource, WireRead } from './read-body.ts';

/**
 * What one edge process lets slow and stalled uploads hold when its runtime does not bound them
 * itself (Deno: `Deno.serve` has no body timeout and no connection cap). The Node edge enforces
 * the same settings in node:http terms (edge/node/http-listener.ts); see docs/EDGE.md "Limits".
 */
export interface BodyLimits {
  /** `BODY_TIMEOUT_MS`: the whole body within this long after reading began (else `408 body_timeout`). */
  bodyTimeoutMs: number;
  /** `MAX_CONNECTIONS`, read here as request bodies being read at once: one more is `503 overloaded`. */
  maxConnections: number;
  /** `MAX_INFLIGHT_BODY_BYTES`: body bytes held at once (declared lengths reserved up front); past it `503 overloaded`. */
  maxInflightBodyBytes: number;
}

/** A limited body: a {@link BodySource} whose bytes stay counted until `release()` (call it once the request is answered). */
export interface LimitedBody extends BodySource {
  release(): void;
}

/** The limits of one process: hands out {@link LimitedBody} sources for web `Request`s. */
export interface BodyLimiter {
  body(request: Request): LimitedBody;
  /** Bodies being read, and body bytes held, right now. */
  stats(): { reading: number; heldBytes: number };
}

/**
 * Body limits for runtimes serving web `Request`s (Deno): a body that has not arrived whole
 * within `bodyTimeoutMs` is cancelled and answered `timeout` (`408 body_timeout`); past
 * `maxConnections` bodies being read at once, or past `maxInflightBodyBytes` held at once
 * (a declared length is reserved before anything is read, so stalled uploads are refused before
 * they send their bytes), the read answers `busy` (`503 overloaded` with `Retry-After`) without
 * reading. Bytes stay counted until the body's `release()`, after the answer.
 *
 * @example
 * ```ts
 * const limiter = createBodyLimiter(config);
 * const body = limiter.body(request);
 * try { return toResponse(await http.ingest(endpoint, { headers: request.headers, body, country })); } finally { body.release(); }
 * ```
 */
export function createBodyLimiter(limits: BodyLimits, o: { budget?: ByteBudget } = {}): BodyLimiter {
  const budget = o.budget ?? createByteBudget(limits.maxInflightBodyBytes);
  const shared = { reading: 0 };
  return {
    body: (request) => new LimitedRequestBody(request, limits, budget, shared),
    stats: () => ({ reading: shared.reading, heldBytes: budget.inUse }),
  };
}

class LimitedRequestBody implements LimitedBody {
  readonly contentEncoding: string | null;
  readonly contentLength: string | null;
  /** Bytes this body has taken from the budget. */
  private held = 0;

  constructor(
    private readonly request: Request,
    private readonly limits: BodyLimits,
    private readonly budget: ByteBudget,
    private readonly shared: { reading: number },
  ) {
    this.contentEncoding = request.headers.get('content-encoding');
    this.contentLength = request.headers.get('content-length');
  }

  /** Counts this body as holding `bytes` (never less than before); false, nothing taken, past the budget. */
  private hold(bytes: number): boolean {
    if (bytes <= this.held) return true;
    if (!this.budget.tryTake(bytes - this.held)) return false;
    this.held = bytes;
    return true;
  }

  release(): void {
    this.budget.give(this.held);
    this.held = 0;
  }

  async read(maxBytes: number): Promise<WireRead> {
    const stream = this.request.body;
    if (stream === null) return { kind: 'none' };
    if (this.shared.reading >= this.limits.maxConnections) {
      await stream.cancel().catch(() => undefined);
      return { kind: 'busy', limit: 'MAX_CONNECTIONS' };
    }
    const declared = Number(this.contentLength ?? NaN);
    if (Number.isFinite(declared) && declared > 0 && !this.hold(Math.min(declared, maxBytes))) {
      await stream.cancel().catch(() => undefined);
      return { kind: 'busy' };
    }
    this.shared.reading++;
    const reader = stream.getReader();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<WireRead>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'timeout', afterMs: this.limits.bodyTimeoutMs }), this.limits.bodyTimeoutMs);
    });
    try {
      const result = await Promise.race([this.pull(reader, maxBytes), timedOut]);
      // Not `ok`: stop the upload (a pending read settles, the runtime drops the rest).
      if (result.kind !== 'ok') await reader.cancel().catch(() => undefined);
      return result;
    } finally {
      clearTimeout(timer);
      this.shared.reading--;
    }
  }

  private async pull(reader: ReadableStreamDefaultReader<Uint8Array>, maxBytes: number): Promise<WireRead> {
    const chunks: Uint8Array[] = [];
    let total = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        if (total > maxBytes) return { kind: 'over' };
        if (!this.hold(total)) return { kind: 'busy' };
        chunks.push(value);
      }
    } catch {
      return { kind: 'error' };
    }
    return { kind: 'ok', bytes: concatBytes(chunks, total) };
  }
}
