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
  // window start -> "site\0dimension" -> values seen
  const seen = new Map<number, Map<string, Set<string>>>();

  function capped(ws: number, site: string, dimension: string, value: string): string {
    let perWindow = seen.get(ws);
    if (perWindow === undefined) {
      perWindow = new Map();
      seen.set(ws, perWindow);
      if (seen.size > maxTrackedWindows) seen.delete(oldestKey(seen));
    }
    const k = `${site}\u0000${dimension}`;
    let values = perWindow.get(k);
    if (values === undefined) {
      values = new Set();
      perWindow.set(k, values);
    }
    if (values.has(value)) return value;
    if (values.size >= o.cardinalityCap) return OTHER;
    values.add(value);
    return value;
  }

  return {
    add(e) {
      const ws = windowStart(e.eventTimeMs, o.windowSizeMs);
      const event = capped(ws, e.site, '$event', e.event);
      const dimensions = e.dimensions.map(([name, value]): [string, string] => [name, capped(ws, e.site, name, value)]);
      let key = `${ws}\u0000${e.site}\u0000${event}`;
      for (const [name, value] of dimensions) key += `\u0000${name}\u0001${value}`;
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
