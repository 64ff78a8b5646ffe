import { addToPartial, emptyPartial, windowStart, type Hash64, type PartialRow } from '../core/algebra/index.ts';

/** Value that replaces dimension values (and event names) beyond the cardinality cap. */
export const OTHER = '__other__';

/** One accepted event, already pseudonymized and reduced to what is aggregated. */
export interface AccumulatorEvent {
  eventTimeMs: number;
  site: string;
  event: string;
  /** `[name, value]` sorted by name. */
  dimensions: Array<[string, string]>;
  user: Hash64 | undefined;
  value: number | undefined;
  /**
   * The client's messageId, when sent. The in-memory accumulator ignores it; the Workers entry
   * forwards it so the Durable Object shard can deduplicate retries durably.
   */
  messageId?: string;
}

/** Partial rows keyed by (window start, site, event, dimensions), drained by the flusher. */
export interface Accumulator {
  add(e: AccumulatorEvent): void;
  /** Hands over all rows and starts empty. Cardinality state is kept: it is per window. */
  drain(): PartialRow[];
  readonly rowCount: number;
}

export interface AccumulatorOptions {
  windowSizeMs: number;
  /** Distinct values per (window, site, dimension) kept before folding into `__other__`. */
  cardinalityCap: number;
  /** Windows whose value sets are remembered; the oldest is forgotten first. Default 16. */
  maxTrackedWindows?: number;
}

/**
 * Bounded memory (DESIGN §3.8): per (window, site, dimension) the first `cardinalityCap`
 * distinct values are kept and later ones fold into `__other__`; event names are capped the
 * same way (as dimension `$event`) because they are client-chosen too. The cap is per edge:
 * a window merged from N edges can hold up to N × cap values before the aggregator's own caps.
 *
 * @example
 * ```ts
 * const acc = createAccumulator({ windowSizeMs: 60_000, cardinalityCap: 1000 });
 * acc.add({ eventTimeMs, site: 'demo', event: 'signup', dimensions: [['path', '/']], user, value: undefined });
 * const rows = acc.drain();
 * ```
 */
export function createAccumulator(o: AccumulatorOptions): Accumulator {
  const maxTrackedWindows = o.maxTrackedWindows ?? 16;
  let rows = new Map<string, PartialRow>();
  // window start -> site -> dimension -> values seen. Nested maps, so the hot path builds no
  // composite key strings for the cap (one lookup per level, short interned keys).
  const seen = new Map<number, Map<string, Map<string, Set<string>>>>();

  function valuesSeen(ws: number, site: string): Map<string, Set<string>> {
    let perWindow = seen.get(ws);
    if (perWindow === undefined) {
      perWindow = new Map();
      seen.set(ws, perWindow);
      if (seen.size > maxTrackedWindows) seen.delete(oldestKey(seen));
    }
    let perSite = perWindow.get(site);
    if (perSite === undefined) {
      perSite = new Map();
      perWindow.set(site, perSite);
    }
    return perSite;
  }

  function capped(perSite: Map<string, Set<string>>, dimension: string, value: string): string {
    let values = perSite.get(dimension);
    if (values === undefined) {
      values = new Set();
      perSite.set(dimension, values);
    }
    if (values.has(value)) return value;
    if (values.size >= o.cardinalityCap) return OTHER;
    values.add(value);
    return value;
  }

  return {
    add(e) {
      const ws = windowStart(e.eventTimeMs, o.windowSizeMs);
      const perSite = valuesSeen(ws, e.site);
      const event = capped(perSite, '$event', e.event);
      // Copy the dimensions only when the cap changes a value: the caller's array is its own.
      let dimensions = e.dimensions;
      let key = `${ws}\u0000${e.site}\u0000${event}`;
      for (let i = 0; i < dimensions.length; i++) {
        const [name, value] = dimensions[i] as [string, string];
        const kept = capped(perSite, name, value);
        if (kept !== value) {
          if (dimensions === e.dimensions) dimensions = dimensions.map(([n, v]): [string, string] => [n, v]);
          dimensions[i] = [name, kept];
        }
        key += `\u0000${name}\u0001${kept}`;
      }
      let row = rows.get(key);
      if (row === undefined) {
        row = { windowStartMs: ws, windowSizeMs: o.windowSizeMs, site: e.site, event, dimensions, partial: emptyPartial() };
        rows.set(key, row);
      }
      addToPartial(row.partial, { user: e.user, value: e.value });
    },
    drain() {
      const out = [...rows.values()];
      rows = new Map();
      return out;
    },
    get rowCount() {
      return rows.size;
    },
  };
}

function oldestKey(m: Map<number, unknown>): number {
  let oldest = Number.POSITIVE_INFINITY;
  for (const k of m.keys()) if (k < oldest) oldest = k;
  return oldest;
}
