/**
 * Cardinality caps per (window, site, dimension), shared by the edge accumulator and the
 * aggregator so both fold exactly alike (DESIGN §3.10): the first `cap` distinct values of a
 * dimension in a window are kept, later ones become {@link OTHER}. `__other__` itself always
 * passes and takes no place.
 *
 * Value sets are remembered for the `trackedWindows` newest windows seen. Once all places are
 * taken, a window older than every tracked one gets an untracked set for each use, so its values
 * are kept (late data and corrections are never folded because they are late) but the cap does
 * not hold across uses for such windows: issue #10 finding 5 stays open for windows older than
 * the tracked ones (docs/SECURITY.md "Not enforced yet"). A late window newer than the oldest
 * tracked one gets a set of its own. The rule depends only on the sequence of windows and values
 * seen, so a replay of the same input from a {@link CardinalityCapSnapshot} folds exactly the
 * same values.
 */

/** Value that replaces dimension values (and event names) beyond the cardinality cap. */
export const OTHER = '__other__';

/** Values seen per dimension name, for one site in one window. */
export type SiteValues = Map<string, Set<string>>;

/** One tracked window: its sites' value sets. */
export type WindowValues = Map<string, SiteValues>;

/** JSON-serializable cap state, sorted so equal states serialize identically. */
export interface CardinalityCapSnapshot {
  /** Tracked window starts, ascending. */
  windowsMs: number[];
  /** [window start, site, dimension, kept values in the order they were kept]. */
  values: Array<[startMs: number, site: string, dimension: string, values: string[]]>;
}

export interface CardinalityCap {
  /** The value sets of window `startMs` (untracked ones for a window older than every tracked one). */
  window(startMs: number): WindowValues | undefined;
  /** The value sets of `site` in a window from {@link window}. */
  site(w: WindowValues, site: string): SiteValues;
  /** `value` if kept, {@link OTHER} if beyond the cap (records a newly kept value). */
  keep(s: SiteValues, dimension: string, value: string): string;
  /** `dims` with values beyond the cap folded; the same array when nothing folds. */
  fold(startMs: number, site: string, dims: Array<[string, string]>): Array<[string, string]>;
  snapshot(): CardinalityCapSnapshot;
}

/**
 * @throws RangeError for a cap or window count that is not a positive integer.
 * @example
 * const caps = createCardinalityCap({ cap: 1000, trackedWindows: 16 });
 * const dims = caps.fold(row.windowStartMs, row.site, row.dimensions);
 */
export function createCardinalityCap(o: { cap: number; trackedWindows: number; restore?: CardinalityCapSnapshot }): CardinalityCap {
  const { cap, trackedWindows } = o;
  for (const [name, v] of [['cap', cap], ['trackedWindows', trackedWindows]] as const) {
    if (!(Number.isInteger(v) && v >= 1)) throw new RangeError(`createCardinalityCap: ${name} must be a positive integer, got ${v}`);
  }
  const windows = new Map<number, WindowValues>();
  // The smallest tracked start, kept up to date so the common path does not scan.
  let oldest = Number.POSITIVE_INFINITY;
  if (o.restore !== undefined) {
    for (const start of o.restore.windowsMs) {
      windows.set(start, new Map());
      if (start < oldest) oldest = start;
    }
    for (const [start, site, dimension, values] of o.restore.values) {
      const w = windows.get(start);
      if (w === undefined) throw new RangeError(`createCardinalityCap: restore has values for window ${start}, which it does not track`);
      let s = w.get(site);
      if (s === undefined) w.set(site, (s = new Map()));
      s.set(dimension, new Set(values));
    }
  }

  function window(startMs: number): WindowValues | undefined {
    const known = windows.get(startMs);
    if (known !== undefined) return known;
    const w: WindowValues = new Map();
    // A window older than every tracked one while all places are taken gets a set of its own for
    // this use only (it is not tracked): late data and corrections keep their values. This lets
    // events for such windows exceed the cap (issue #10 finding 5, open: docs/SECURITY.md); folding
    // them all instead turned every correction older than the tracked windows into `__other__`.
    if (windows.size >= trackedWindows && startMs < oldest) return w;
    windows.set(startMs, w);
    if (startMs < oldest) oldest = startMs;
    if (windows.size > trackedWindows) {
      windows.delete(oldest);
      oldest = Number.POSITIVE_INFINITY;
      for (const k of windows.keys()) if (k < oldest) oldest = k;
    }
    return w;
  }

  function site(w: WindowValues, name: string): SiteValues {
    let s = w.get(name);
    if (s === undefined) w.set(name, (s = new Map()));
    return s;
  }

  function keep(s: SiteValues, dimension: string, value: string): string {
    let values = s.get(dimension);
    if (values === undefined) s.set(dimension, (values = new Set()));
    if (values.has(value) || value === OTHER) return value;
    if (values.size >= cap) return OTHER;
    values.add(value);
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
    snapshot() {
      const values: CardinalityCapSnapshot['values'] = [];
      const windowsMs = [...windows.keys()].sort((a, b) => a - b);
      for (const start of windowsMs) {
        const w = windows.get(start) as WindowValues;
        for (const siteName of [...w.keys()].sort()) {
          const s = w.get(siteName) as SiteValues;
          for (const dimension of [...s.keys()].sort()) values.push([start, siteName, dimension, [...(s.get(dimension) as Set<string>)]]);
        }
      }
      return { windowsMs, values };
    },
  };
}
