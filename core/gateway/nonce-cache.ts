/** Remembers signature nonces so a captured request cannot be replayed; see {@link createNonceCache}. */
export interface NonceCache {
  /** Records (edge, nonce); false when it was already seen or its timestamp is at or below the floor. */
  remember(edgeId: string, nonce: string, timestampMs: number, nowMs: number): boolean;
  readonly size: number;
}

/**
 * Bounded replay protection. A nonce only needs remembering while its timestamp is fresh
 * (±`ttlMs`, the signature's skew window); older ones are refused as stale anyway. When the
 * cache is full the oldest entry is evicted and the *floor* rises to its timestamp: from then
 * on any request signed at or before the floor is refused, so eviction never lets a replay
 * through — it can only make an edge re-sign a retry, which it does on every attempt anyway.
 */
export function createNonceCache(o: { capacity: number; ttlMs: number }): NonceCache {
  // Insertion order = arrival order; entries carry the request's timestamp.
  const seen = new Map<string, number>();
  let floorMs = Number.NEGATIVE_INFINITY;
  return {
    remember(edgeId, nonce, timestampMs, nowMs) {
      for (const [key, ts] of seen) {
        // Older than the skew window: verification refuses that timestamp anyway.
        if (ts >= nowMs - o.ttlMs) break;
        seen.delete(key);
      }
      const key = `${edgeId}\u0000${nonce}`;
      if (timestampMs <= floorMs || seen.has(key)) return false;
      seen.set(key, timestampMs);
      while (seen.size > o.capacity) {
        const oldest = seen.entries().next();
        if (oldest.done) break;
        seen.delete(oldest.value[0]);
        floorMs = Math.max(floorMs, oldest.value[1]);
      }
      return true;
    },
    get size() {
      return seen.size;
    },
  };
}
