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
  // Arrival order in two parallel arrays consumed from `head`: expiring and evicting the oldest
  // is O(1). (Iterating a Map from the front on every call walks the holes its deletes leave,
  // which cost the edge's dedup set ~50 µs per event once full.)
  const seen = new Set<string>();
  let keys: string[] = [];
  let stamps: number[] = [];
  let head = 0;
  let floorMs = Number.NEGATIVE_INFINITY;
  const dropOldest = (): number => {
    const ts = stamps[head] as number;
    seen.delete(keys[head] as string);
    head++;
    if (head > 1024 && head * 2 > keys.length) {
      keys = keys.slice(head);
      stamps = stamps.slice(head);
      head = 0;
    }
    return ts;
  };
  return {
    remember(edgeId, nonce, timestampMs, nowMs) {
      // Older than the skew window: verification refuses that timestamp anyway.
      while (head < keys.length && (stamps[head] as number) < nowMs - o.ttlMs) dropOldest();
      const key = `${edgeId}\u0000${nonce}`;
      if (timestampMs <= floorMs || seen.has(key)) return false;
      seen.add(key);
      keys.push(key);
      stamps.push(timestampMs);
      while (seen.size > o.capacity) floorMs = Math.max(floorMs, dropOldest());
      return true;
    },
    get size() {
      return seen.size;
    },
  };
}
