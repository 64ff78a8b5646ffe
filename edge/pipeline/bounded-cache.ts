/**
 * A map that never holds more than `capacity` entries: when full, the oldest insertion is
 * evicted (first in, first out). Hits do not reorder entries: a hot key evicted by a burst of
 * new ones costs one recomputation, which is cheaper on the hot path than moving every hit to
 * the back of the map.
 *
 * @example
 * ```ts
 * const cache = createBoundedCache<string, number>(2);
 * cache.set('a', 1);
 * cache.get('a'); // 1
 * ```
 */
export interface BoundedCache<K, V> {
  get(key: K): V | undefined;
  set(key: K, value: V): void;
  readonly size: number;
  readonly capacity: number;
}

export function createBoundedCache<K, V>(capacity: number): BoundedCache<K, V> {
  const entries = new Map<K, V>();
  return {
    get: (key) => entries.get(key),
    set(key, value) {
      if (capacity <= 0) return;
      if (!entries.has(key) && entries.size >= capacity) {
        const oldest = entries.keys().next();
        if (!oldest.done) entries.delete(oldest.value);
      }
      entries.set(key, value);
    },
    get size() {
      return entries.size;
    },
    capacity,
  };
}
