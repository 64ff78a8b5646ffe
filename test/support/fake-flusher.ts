import type { Flusher } from '../../edge/flusher.ts';

/**
 * A flusher that accepts everything and sends nothing (a fake of our own port for unit tests and
 * the in-process benchmark); `over` replaces single methods, e.g. to record calls.
 *
 * @example
 * const flusher = fakeFlusher({ rowsAdded: () => log.push('rows added') });
 */
export function fakeFlusher(over: Partial<Flusher> = {}): Flusher {
  return {
    addRejected: () => undefined,
    rowsAdded: () => undefined,
    commit: async () => ({ ok: true }),
    overloaded: () => false,
    retryAfterS: 1,
    flushNow: async () => ({ ok: true, envelopes: 0, rows: 0, rejected: 0 }),
    tick: async () => undefined,
    close: async () => ({ ok: true, envelopes: 0, rows: 0, rejected: 0 }),
    stats: () => ({ sequence: 0, watermarkMs: 0, pendingEnvelopes: 0, pendingRows: 0, bufferedRejected: 0, waitingRequests: 0 }),
    ...over,
  };
}
