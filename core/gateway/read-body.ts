/** Bytes of request bodies held in memory at once, all requests together; see {@link createByteBudget}. */
export interface ByteBudget {
  /** Takes `n` bytes; false (and nothing taken) when that would exceed the limit. */
  tryTake(n: number): boolean;
  give(n: number): void;
  readonly inUse: number;
}

/**
 * A process-wide cap on buffered body bytes: each body's bytes are taken chunk by chunk as they
 * arrive and given back when its request is answered. Over the cap the gateway answers 503 +
 * Retry-After instead of growing (ADR 0015).
 */
export function createByteBudget(limit: number): ByteBudget {
  let inUse = 0;
  return {
    tryTake(n) {
      if (inUse + n > limit) return false;
      inUse += n;
      return true;
    },
    give(n) {
      inUse = Math.max(0, inUse - n);
    },
    get inUse() {
      return inUse;
    },
  };
}

export type LimitedBody = { kind: 'ok'; bytes: Uint8Array } | { kind: 'too_large' } | { kind: 'overloaded' };

/**
 * Reads a request body up to `maxBytes`, taking each chunk from `budget` (the caller gives back
 * `held()` once the request is answered); stops reading at the cap or when the budget is spent,
 * so an oversized body costs at most the cap.
 */
export async function readLimitedBody(request: Request, maxBytes: number, budget: ByteBudget): Promise<{ result: LimitedBody; held: number }> {
  const declared = Number(request.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) return { result: { kind: 'too_large' }, held: 0 };
  if (request.body === null) return { result: { kind: 'ok', bytes: new Uint8Array(0) }, held: 0 };
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (total + value.byteLength > maxBytes) {
      await reader.cancel();
      return { result: { kind: 'too_large' }, held: total };
    }
    if (!budget.tryTake(value.byteLength)) {
      await reader.cancel();
      return { result: { kind: 'overloaded' }, held: total };
    }
    total += value.byteLength;
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return { result: { kind: 'ok', bytes: out }, held: total };
}
