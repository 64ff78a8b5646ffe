import { drop, ok, type StepResult } from './step-result.ts';

/** Remembers recent messageIds per site so client retries are counted once. */
export interface Deduplicator {
  /** `ok` the first time (site, messageId) is seen, `drop` afterwards. Marks it as seen. */
  check(siteId: string, messageId: string | undefined): StepResult<null>;
  readonly size: number;
}

/**
 * Bounded by `capacity` with first-in-first-out eviction, so memory stays flat under any
 * traffic; a retry is recognized as long as its id is among the last `capacity` ids this edge
 * accepted. Events without a messageId cannot be deduplicated and always pass.
 */
export function createDeduplicator(o: { capacity: number }): Deduplicator {
  const seen = new Set<string>();
  return {
    check(siteId, messageId) {
      if (messageId === undefined || o.capacity === 0) return ok(null);
      const key = `${siteId}\u0000${messageId}`;
      if (seen.has(key)) return drop('duplicate_message_id');
      seen.add(key);
      if (seen.size > o.capacity) {
        const oldest = seen.values().next();
        if (!oldest.done) seen.delete(oldest.value);
      }
      return ok(null);
    },
    get size() {
      return seen.size;
    },
  };
}
