/** Remembers signature nonces so a captured request cannot be replayed; see {@link createNonceCache}. */
export interface NonceCache {
  /** True when (edge, nonce) would be refused: already seen, or signed at or below that edge's floor. Records nothing. */
  refuses(edgeId: string, nonce: string, timestampMs: number, nowMs: number): boolean;
  /** Records (edge, nonce); false when it was already seen or its timestamp is at or below that edge's floor. */
  remember(edgeId: string, nonce: string, timestampMs: number, nowMs: number): boolean;
  /** Nonces remembered, all edges together. */
  readonly size: number;
}

/**
 * Bounded replay protection, **one window per edge** (ADR 0015): what one edge sends can never
 * make another edge's fresh requests fail. A nonce only needs remembering while its timestamp is
 * fresh (`ttlMs`, the signature's maximum age); older ones are refused as stale anyway. When an
 * edge's window is full its oldest entry is evicted and that edge's *floor* rises to its
 * timestamp: from then on a request of that edge signed at or before the floor is refused, so
 * eviction never lets a replay through — it can only make that same edge re-sign a retry, which
 * it does on every attempt anyway. Memory: at most `capacityPerEdge` nonces per configured edge
 * (the caller asks only for edges that have a key).
 */
export function createNonceCache(o: { capacityPerEdge: number; ttlMs: number }): NonceCache {
  const edges = new Map<string, EdgeNonces>();
  let total = 0;
  const windowOf = (edgeId: string, nowMs: number): EdgeNonces => {
    let w = edges.get(edgeId);
    if (w === undefined) {
      w = new EdgeNonces();
      edges.set(edgeId, w);
    }
    // Older than the freshness window: verification refuses that timestamp anyway.
    total -= w.expire(nowMs - o.ttlMs);
    return w;
  };
  return {
    refuses(edgeId, nonce, timestampMs, nowMs) {
      const w = windowOf(edgeId, nowMs);
      return timestampMs <= w.floorMs || w.seen.has(nonce);
    },
    remember(edgeId, nonce, timestampMs, nowMs) {
      const w = windowOf(edgeId, nowMs);
      if (timestampMs <= w.floorMs || w.seen.has(nonce)) return false;
      w.add(nonce, timestampMs);
      total++;
      while (w.seen.size > o.capacityPerEdge) {
        w.floorMs = Math.max(w.floorMs, w.dropOldest());
        total--;
      }
      return true;
    },
    get size() {
      return total;
    },
  };
}

/**
 * One edge's nonces in arrival order, in two parallel arrays consumed from `head`: expiring and
 * evicting the oldest is O(1). (Iterating a Map from the front on every call walks the holes its
 * deletes leave, which cost the edge's dedup set ~50 µs per event once full.)
 */
class EdgeNonces {
  readonly seen = new Set<string>();
  floorMs = Number.NEGATIVE_INFINITY;
  private keys: string[] = [];
  private stamps: number[] = [];
  private head = 0;

  add(nonce: string, timestampMs: number): void {
    this.seen.add(nonce);
    this.keys.push(nonce);
    this.stamps.push(timestampMs);
  }

  /** Drops entries stamped before `cutoffMs`; returns how many. */
  expire(cutoffMs: number): number {
    let n = 0;
    while (this.head < this.keys.length && (this.stamps[this.head] as number) < cutoffMs) {
      this.dropOldest();
      n++;
    }
    return n;
  }

  /** Drops the oldest entry; returns its timestamp. */
  dropOldest(): number {
    const ts = this.stamps[this.head] as number;
    this.seen.delete(this.keys[this.head] as string);
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.keys.length) {
      this.keys = this.keys.slice(this.head);
      this.stamps = this.stamps.slice(this.head);
      this.head = 0;
    }
    return ts;
  }
}
