import { readCapped, type ByteBudget } from '../../shared/capped-read.ts';

export { createByteBudget, type ByteBudget } from '../../shared/capped-read.ts';

export type LimitedBody = { kind: 'ok'; bytes: Uint8Array } | { kind: 'too_large' } | { kind: 'overloaded' };

/**
 * Reads a request body up to `maxBytes`, taking each chunk from `budget` (the caller gives back
 * `held` once the request is answered); stops reading at the cap or when the budget is spent,
 * so an oversized body costs at most the cap.
 */
export async function readLimitedBody(request: Request, maxBytes: number, budget: ByteBudget): Promise<{ result: LimitedBody; held: number }> {
  const declared = Number(request.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) return { result: { kind: 'too_large' }, held: 0 };
  if (request.body === null) return { result: { kind: 'ok', bytes: new Uint8Array(0) }, held: 0 };
  const read = await readCapped(request.body, maxBytes, { budget });
  if (read.kind === 'over') return { result: { kind: 'too_large' }, held: 0 };
  if (read.kind === 'busy') return { result: { kind: 'overloaded' }, held: 0 };
  // The connection broke mid-body: nobody is left to answer.
  if (read.kind === 'error') throw new Error('the request body could not be read completely');
  return { result: read, held: read.bytes.byteLength };
}
