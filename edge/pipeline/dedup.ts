import { drop, ok, type StepResult } from './step-result.ts';

/** Remembers recent messageIds per site so client retries are counted once. */
export interface Deduplicator {
  /** `ok` the first time (site, messageId) is seen, `drop` afterwards. Marks it as seen. */
  check(siteId: string, messageId: string | undefined): StepResult<null>;
  readonly size: number;
}

const FIRST_SEEN = ok(null);
const DUPLICATE = drop('duplicate_message_id');

/**
 * Bounded by `capacity` with first-in-first-out eviction, so memory stays flat under any
 * traffic; a retry is recognized as long as its id is among the last `capacity` ids this edge
 * accepted. Events without a messageId cannot be deduplicated and always pass. Eviction goes
 * through a ring buffer, O(1) (see `createFifoOrder` in bounded-cache.ts: evicting through the
 * Set's iterator made every event cost O(capacity) once the set was full).
 */
export function createDeduplicator(o: { capacity: number }): Deduplicator {
  // Per site, so the hot path builds no composite key; the ring remembers (site, id) in two
  // parallel arrays so recording an id allocates nothing.
  const bySite = new Map<string, Set<string>>();
  const ringSites = new Array<string>(Math.max(0, o.capacity));
  const ringIds = new Array<string>(Math.max(0, o.capacity));
  let next = 0;
  let size = 0;
  return {
    check(siteId, messageId) {
      if (messageId === undefined || o.capacity === 0) return FIRST_SEEN;
      let seen = bySite.get(siteId);
      if (seen === undefined) {
        seen = new Set();
        bySite.set(siteId, seen);
      }
      // One hash lookup instead of has() then add(): an id that was there leaves the size unchanged.
      const before = seen.size;
      seen.add(messageId);
      if (seen.size === before) return DUPLICATE;
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
      return FIRST_SEEN;
    },
    get size() {
      return size;
    },
  };
}
