/**
 * Cardinality caps per (window, site, dimension), shared by the edge accumulator and the
 * aggregator so both fold exactly alike (DESIGN §3.10): the first `cap` distinct values of a
 * dimension in a window are kept, later ones become {@link OTHER}. `__other__` itself always
 * passes and takes no place.
 *
 * Value sets are remembered for the `trackedWindows` most recently used windows (least recently
 * used evicted first; a returning old window is tracked again). When a window is evicted, the
 * number of values each of its (site, dimension) sets kept (plus the base it carried) goes into
 * a `spent` table; when the window is tracked again each set starts with that base, so
 * `kept + base <= cap` holds across evictions and the total of values ever kept for a
 * (window, site, dimension) never exceeds the cap, whatever the order of event times (issue #10
 * finding 5). A value kept before an eviction and seen again after counts twice against the
 * budget (the evicted values themselves are not remembered); that only folds sooner.
 *
 * The `spent` table is bounded: entries for windows older than the newest window seen minus
 * `horizonMs`, and the oldest entries beyond `maxSpentEntries`, are dropped, and every untracked
 * window at or before the newest dropped one folds every value from then on (`foldThroughMs`).
 * Late data within the horizon keeps its values up to the rest of its cap. The rule depends
 * only on the sequence of windows and values seen, so a replay of the same input from a
 * {@link CardinalityCapSnapshot} folds exactly the same values.
 */

/** Value that replaces dimension values (and event names) beyond the cardinality cap. */
export const OTHER = '__other__';

/** Values kept for one dimension, and how many its window kept before being evicted. */
export interface KeptValues {
  values: Set<string>;
  base: number;
}

/** Values kept per dimension name, for one site in one window. */
export type SiteValues = Map<string, KeptValues>;

/** One tracked window: its sites' value sets. */
export type WindowValues = Map<string, SiteValues>;

/** JSON-serializable cap state; equal states serialize identically. */
export interface CardinalityCapSnapshot {
  /** Tracked window starts, least recently used first (ascending in checkpoints before the LRU rule). */
  windowsMs: number[];
  /** [window start, site, dimension, kept values in the order they were kept, base if not 0]. */
  values: Array<[startMs: number, site: string, dimension: string, values: string[], base?: number]>;
  /** [window start, site, dimension, values kept in total] of evicted windows, sorted. */
  spent?: Array<[startMs: number, site: string, dimension: string, count: number]>;
  /** Untracked windows at or before this start fold every value. */
  foldThroughMs?: number;
  /** The newest window start seen. */
  newestMs?: number;
}

export interface CardinalityCap {
  /** The value sets of window `startMs`; undefined when every value of it folds. */
  window(startMs: number): WindowValues | undefined;
  /** The value sets of `site` in a window from {@link window}. */
  site(w: WindowValues, site: string): SiteValues;
  /** `value` if kept, {@link OTHER} if beyond the cap (records a newly kept value). */
  keep(s: SiteValues, dimension: string, value: string): string;
  /** `dims` with values beyond the cap folded; the same array when nothing folds. */
  fold(startMs: number, site: string, dims: Array<[string, string]>): Array<[string, string]>;
  snapshot(): CardinalityCapSnapshot;
  /** Entries in the `spent` table (for tests and metrics). */
  readonly spentEntries: number;
}

/** Default bound of the `spent` table: beyond it the oldest windows fold. */
export const DEFAULT_MAX_SPENT_ENTRIES = 100_000;

/**
 * @throws RangeError for a cap or window count that is not a positive integer, or a horizon
 * or entry limit that is negative.
 * @example
 * const caps = createCardinalityCap({ cap: 1000, trackedWindows: 16, horizonMs: 86_400_000 });
 * const dims = caps.fold(row.windowStartMs, row.site, row.dimensions);
 */
export function createCardinalityCap(o: {
  cap: number;
  trackedWindows: number;
  /** `spent` entries of windows older than the newest seen minus this are dropped (and fold). */
  horizonMs: number;
  maxSpentEntries?: number;
  restore?: CardinalityCapSnapshot;
}): CardinalityCap {
  const { cap, trackedWindows, horizonMs } = o;
  const maxSpentEntries = o.maxSpentEntries ?? DEFAULT_MAX_SPENT_ENTRIES;
  for (const [name, v] of [['cap', cap], ['trackedWindows', trackedWindows]] as const) {
    if (!(Number.isInteger(v) && v >= 1)) throw new RangeError(`createCardinalityCap: ${name} must be a positive integer, got ${v}`);
  }
  if (!(horizonMs >= 0)) throw new RangeError(`createCardinalityCap: horizonMs must be >= 0, got ${horizonMs}`);
  if (!(Number.isInteger(maxSpentEntries) && maxSpentEntries >= 0)) throw new RangeError(`createCardinalityCap: maxSpentEntries must be an integer >= 0, got ${maxSpentEntries}`);
  // Insertion order is the LRU order: least recently used first.
  const windows = new Map<number, WindowValues>();
  let lastUsed: number | undefined;
  // window start -> site -> dimension -> values kept in total before eviction.
  const spent = new Map<number, Map<string, Map<string, number>>>();
  let spentEntries = 0;
  let foldThroughMs = Number.NEGATIVE_INFINITY;
  let newestMs = Number.NEGATIVE_INFINITY;

  function addSpent(start: number, site: string, dimension: string, count: number): void {
    let w = spent.get(start);
    if (w === undefined) spent.set(start, (w = new Map()));
    let s = w.get(site);
    if (s === undefined) w.set(site, (s = new Map()));
    if (!s.has(dimension)) spentEntries++;
    s.set(dimension, count);
  }

  function dropSpent(start: number): void {
    const w = spent.get(start);
    if (w !== undefined) {
      for (const s of w.values()) spentEntries -= s.size;
      spent.delete(start);
    }
    if (start > foldThroughMs) foldThroughMs = start;
  }

  /** Drops `spent` windows beyond the horizon, at or before `foldThroughMs`, and beyond the entry limit. */
  function boundSpent(): void {
    const limit = newestMs - horizonMs;
    let newestDropped = Number.NEGATIVE_INFINITY;
    for (const start of spent.keys()) if (start < limit && start > newestDropped) newestDropped = start;
    if (newestDropped > Number.NEGATIVE_INFINITY) dropSpent(newestDropped);
    for (const start of [...spent.keys()]) if (start <= foldThroughMs) dropSpent(start);
    if (spentEntries > maxSpentEntries) {
      const starts = [...spent.keys()].sort((a, b) => a - b);
      for (const start of starts) {
        if (spentEntries <= maxSpentEntries) break;
        dropSpent(start);
      }
      for (const start of [...spent.keys()]) if (start <= foldThroughMs) dropSpent(start);
    }
  }

  if (o.restore !== undefined) {
    for (const start of o.restore.windowsMs) windows.set(start, new Map());
    for (const [start, site, dimension, values, base] of o.restore.values) {
      const w = windows.get(start);
      if (w === undefined) throw new RangeError(`createCardinalityCap: restore has values for window ${start}, which it does not track`);
      let s = w.get(site);
      if (s === undefined) w.set(site, (s = new Map()));
      s.set(dimension, { values: new Set(values), base: base ?? 0 });
    }
    for (const [start, site, dimension, count] of o.restore.spent ?? []) addSpent(start, site, dimension, count);
    foldThroughMs = o.restore.foldThroughMs ?? Number.NEGATIVE_INFINITY;
    newestMs = o.restore.newestMs ?? (o.restore.windowsMs.length > 0 ? Math.max(...o.restore.windowsMs) : Number.NEGATIVE_INFINITY);
    lastUsed = o.restore.windowsMs.at(-1);
  }

  function evict(start: number, w: WindowValues): void {
    windows.delete(start);
    if (start < newestMs - horizonMs || start <= foldThroughMs) {
      dropSpent(start);
      boundSpent();
      return;
    }
    for (const [siteName, s] of w) for (const [dimension, kept] of s) addSpent(start, siteName, dimension, kept.base + kept.values.size);
    if (spentEntries > maxSpentEntries) boundSpent();
  }

  function window(startMs: number): WindowValues | undefined {
    if (startMs === lastUsed) return windows.get(startMs);
    const known = windows.get(startMs);
    if (known !== undefined) {
      // Most recently used goes last.
      windows.delete(startMs);
      windows.set(startMs, known);
      lastUsed = startMs;
      return known;
    }
    if (startMs <= foldThroughMs) return undefined;
    if (startMs > newestMs) {
      newestMs = startMs;
      boundSpent();
      if (startMs <= foldThroughMs) return undefined;
    }
    const w: WindowValues = new Map();
    const carried = spent.get(startMs);
    if (carried !== undefined) {
      for (const [siteName, dims] of carried) {
        const s: SiteValues = new Map();
        for (const [dimension, count] of dims) s.set(dimension, { values: new Set(), base: count });
        w.set(siteName, s);
        spentEntries -= dims.size;
      }
      spent.delete(startMs);
    }
    windows.set(startMs, w);
    lastUsed = startMs;
    if (windows.size > trackedWindows) {
      const [lru, lruValues] = windows.entries().next().value as [number, WindowValues];
      evict(lru, lruValues);
    }
    return w;
  }

  function site(w: WindowValues, name: string): SiteValues {
    let s = w.get(name);
    if (s === undefined) w.set(name, (s = new Map()));
    return s;
  }

  function keep(s: SiteValues, dimension: string, value: string): string {
    let kept = s.get(dimension);
    if (kept === undefined) s.set(dimension, (kept = { values: new Set(), base: 0 }));
    if (kept.values.has(value) || value === OTHER) return value;
    if (kept.values.size + kept.base >= cap) return OTHER;
    kept.values.add(value);
    return value;
  }

  return {
    window,
    site,
    keep,
    fold(startMs, siteName, dims) {
      const w = window(startMs);
      const s = w === undefined ? undefined : site(w, siteName);
      let out = dims;
      for (let i = 0; i < dims.length; i++) {
        const [name, value] = dims[i] as [string, string];
        const kept = s === undefined ? OTHER : keep(s, name, value);
        if (kept !== value) {
          if (out === dims) out = dims.map(([n, v]): [string, string] => [n, v]);
          out[i] = [name, kept];
        }
      }
      return out;
    },
    get spentEntries() {
      return spentEntries;
    },
    snapshot() {
      const values: CardinalityCapSnapshot['values'] = [];
      const windowsMs = [...windows.keys()];
      for (const start of [...windowsMs].sort((a, b) => a - b)) {
        const w = windows.get(start) as WindowValues;
        for (const siteName of [...w.keys()].sort()) {
          const s = w.get(siteName) as SiteValues;
          for (const dimension of [...s.keys()].sort()) {
            const kept = s.get(dimension) as KeptValues;
            values.push(kept.base === 0 ? [start, siteName, dimension, [...kept.values]] : [start, siteName, dimension, [...kept.values], kept.base]);
          }
        }
      }
      const snap: CardinalityCapSnapshot = { windowsMs, values };
      if (spent.size > 0) {
        const rows: NonNullable<CardinalityCapSnapshot['spent']> = [];
        for (const start of [...spent.keys()].sort((a, b) => a - b)) {
          const w = spent.get(start) as Map<string, Map<string, number>>;
          for (const siteName of [...w.keys()].sort()) {
            const s = w.get(siteName) as Map<string, number>;
            for (const dimension of [...s.keys()].sort()) rows.push([start, siteName, dimension, s.get(dimension) as number]);
          }
        }
        snap.spent = rows;
      }
      if (foldThroughMs > Number.NEGATIVE_INFINITY) snap.foldThroughMs = foldThroughMs;
      if (newestMs > Number.NEGATIVE_INFINITY) snap.newestMs = newestMs;
      return snap;
    },
  };
}
