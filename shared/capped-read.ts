/**
 * Reading a web stream (a request body, a decompressor's output) with a hard byte cap, and the
 * process-wide budget of body bytes held in memory at once. Used by the edge's body reader
 * (edge/body/read-body.ts) and the gateway's (core/gateway/read-body.ts).
 */

/** Bytes of request bodies held in memory at once, all requests together; see {@link createByteBudget}. */
export interface ByteBudget {
  /** Takes `n` bytes; false (and nothing taken) when that would exceed the limit. */
  tryTake(n: number): boolean;
  give(n: number): void;
  readonly inUse: number;
}

/**
 * A process-wide cap on buffered body bytes: each body's bytes are taken chunk by chunk as they
 * arrive and given back when its request is answered. Over the cap the reader answers `busy`
 * instead of growing (the gateway: 503 + Retry-After, ADR 0015).
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

/** A capped read: `over` past the cap, `error` when the stream failed; with a budget also `busy` when it is spent. */
export type CappedRead = { kind: 'ok'; bytes: Uint8Array } | { kind: 'over' } | { kind: 'error' };
export type BudgetedRead = CappedRead | { kind: 'busy' };

/**
 * The bytes of `stream`, at most `maxBytes`: stops pulling (and cancels the stream, which also
 * stops a decompressor from inflating further) as soon as more arrived, so an oversized stream
 * costs at most the cap. With a `budget`, each chunk is taken from it as it arrives; the bytes of
 * an `ok` read stay taken (the caller gives back `bytes.byteLength` once it is done with them),
 * those of any other outcome are given back before this returns. Never throws.
 */
export function readCapped(stream: ReadableStream<Uint8Array>, maxBytes: number): Promise<CappedRead>;
export function readCapped(stream: ReadableStream<Uint8Array>, maxBytes: number, o: { budget: ByteBudget }): Promise<BudgetedRead>;
export async function readCapped(stream: ReadableStream<Uint8Array>, maxBytes: number, o: { budget?: ByteBudget } = {}): Promise<BudgetedRead> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  const stop = async (result: BudgetedRead): Promise<BudgetedRead> => {
    o.budget?.give(total);
    await reader.cancel().catch(() => undefined);
    return result;
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (total + value.byteLength > maxBytes) return await stop({ kind: 'over' });
      if (o.budget && !o.budget.tryTake(value.byteLength)) return await stop({ kind: 'busy' });
      total += value.byteLength;
      chunks.push(value);
    }
  } catch {
    o.budget?.give(total);
    return { kind: 'error' };
  }
  return { kind: 'ok', bytes: concatBytes(chunks, total) };
}

/** `chunks` as one array of `total` bytes (the one chunk itself when there is only one). */
export function concatBytes(chunks: readonly Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.byteLength;
  }
  return bytes;
}
