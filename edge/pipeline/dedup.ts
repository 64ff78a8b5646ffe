/**
 * Deduplication of client retries by (site, messageId) (docs/EDGE.md "Deduplication", ADR 0010).
 *
 * The ingest pipeline claims a request's messageIds in its synchronous section, right before
 * accumulating; the flusher tells the deduplicator when it drains the accumulator and when the
 * envelopes of that drain are acknowledged, so a durable implementation can turn its marks from
 * "pending" (the event sits in this process's memory) into "committed" (the event is in Kafka).
 */
export interface Deduplicator {
  /**
   * Synchronous. For each messageId (`undefined`: the event has none and cannot be
   * deduplicated), `true` when it is a duplicate (already counted, or in flight in this process,
   * or earlier in the same list), `false` when it is new; new ids are marked. `busy` when another
   * live process holds one of the ids in flight: nothing was marked, answer 503 + Retry-After.
   * `unavailable` when the store failed: nothing was marked, answer 503 + Retry-After.
   */
  claim(site: string, messageIds: ReadonlyArray<string | undefined>): ClaimResult;
  /** The flusher drained the accumulator: the marks made so far ride on the envelopes it encodes now. */
  drained(): void;
  /** Every envelope drained so far is acknowledged by the sink: those marks become committed. */
  acknowledged(): void;
}

/** `unavailable`: the store failed (logged); nothing was marked: answer 503 and count nothing. */
export type ClaimResult = { kind: 'ok'; duplicate: boolean[] } | { kind: 'busy' } | { kind: 'unavailable' };

/** A deduplicator that finds nothing: every event is new (Workers isolates, whose shards deduplicate). */
export const NO_DEDUPLICATION: Deduplicator = {
  claim: (_site, ids) => ({ kind: 'ok', duplicate: ids.map(() => false) }),
  drained: () => undefined,
  acknowledged: () => undefined,
};

/**
 * In-memory, per process (Deno, and tests): bounded by `capacity` with first-in-first-out
 * eviction, so memory stays flat under any traffic; a retry is recognized as long as its id is
 * among the last `capacity` ids this process accepted and the process has not restarted.
 * Correct for retries of in-flight events: a mark made before the flush is acknowledged stays,
 * and the flusher re-sends the same envelope after a failure. Eviction goes through a ring
 * buffer, O(1) (evicting through the Set's iterator made every event cost O(capacity)).
 */
export function createMemoryDeduplicator(o: { capacity: number }): Deduplicator & { readonly size: number } {
  // Per site, so the hot path builds no composite key; the ring remembers (site, id) in two
  // parallel arrays so recording an id allocates nothing.
  const bySite = new Map<string, Set<string>>();
  const ringSites = new Array<string>(Math.max(0, o.capacity));
  const ringIds = new Array<string>(Math.max(0, o.capacity));
  let next = 0;
  let size = 0;

  function check(siteId: string, messageId: string | undefined): boolean {
    if (messageId === undefined || o.capacity === 0) return false;
    let seen = bySite.get(siteId);
    if (seen === undefined) {
      seen = new Set();
      bySite.set(siteId, seen);
    }
    // One hash lookup instead of has() then add(): an id that was there leaves the size unchanged.
    const before = seen.size;
    seen.add(messageId);
    if (seen.size === before) return true;
    if (size < o.capacity) {
      const at = (next + size++) % o.capacity;
      ringSites[at] = siteId;
      ringIds[at] = messageId;
    } else {
      const oldSite = ringSites[next] as string;
      const oldSet = bySite.get(oldSite);
      oldSet?.delete(ringIds[next] as string);
      if (oldSet?.size === 0) bySite.delete(oldSite);
      ringSites[next] = siteId;
      ringIds[next] = messageId;
      next = (next + 1) % o.capacity;
    }
    return false;
  }

  return {
    claim(site, ids) {
      const duplicate = new Array<boolean>(ids.length);
      for (let i = 0; i < ids.length; i++) duplicate[i] = check(site, ids[i]);
      return { kind: 'ok', duplicate };
    },
    drained: () => undefined,
    acknowledged: () => undefined,
    get size() {
      return size;
    },
  };
}
