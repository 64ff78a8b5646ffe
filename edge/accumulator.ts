import { OTHER, addToPartial, createCardinalityCap, emptyPartial, windowStart, type Hash64, type PartialRow, type SiteValues } from '../shared/algebra/index.ts';

export { OTHER };

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
  /**
   * Windows whose value sets are remembered, least recently used forgotten first; a forgotten
   * window continues with the rest of its cap when it returns. Default 16.
   */
  maxTrackedWindows?: number;
  /**
   * How far behind the newest window seen a forgotten window's spent cap is remembered; every
   * value of a window older than that folds into `__other__` once it has been forgotten.
   * Default 24 h ({@link DEFAULT_CAP_HORIZON_MS}).
   */
  capHorizonMs?: number;
}

/** Default {@link AccumulatorOptions.capHorizonMs}: late data up to a day old keeps the rest of its cap. */
export const DEFAULT_CAP_HORIZON_MS = 24 * 3_600_000;

/**
 * Bounded memory (ARCHITECTURE §3.8): per (window, site, dimension) the first `cardinalityCap`
 * distinct values are kept and later ones fold into `__other__`; event names are capped the
 * same way (as dimension `$event`) because they are client-chosen too. The cap holds for every
 * window whatever the order of event times: a window that returns after being forgotten
 * continues with the rest of its cap, so late data keeps its values within the cap; only a
 * window forgotten more than `capHorizonMs` behind the newest folds every value
 * (shared/algebra/cardinality-cap.ts, ADR 0017 "Amendment"). The cap is per edge: a window merged from N edges can
 * hold up to N × cap values before the aggregator's own caps.
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
  // Rows in a tree: window start -> site -> event -> one level per dimension value. Lookups use
  // the (interned) value strings themselves, so the hot path builds and hashes no composite key.
  let rows: PartialRow[] = [];
  let tree = new Map<number, Map<string, Map<string, RowNode>>>();
  // Rows whose dimension names differ from their tree path's (never from the enrich step, whose
  // names are the same for every event): keyed by a composite string instead.
  let irregular = new Map<string, PartialRow>();
  // window start -> site -> dimension -> values seen. Nested maps, so the hot path builds no
  // composite key strings for the cap (one lookup per level, short interned keys).
  const caps = createCardinalityCap({ cap: o.cardinalityCap, trackedWindows: maxTrackedWindows, horizonMs: o.capHorizonMs ?? DEFAULT_CAP_HORIZON_MS });
  const capped = (perSite: SiteValues | undefined, dimension: string, value: string): string => (perSite === undefined ? OTHER : caps.keep(perSite, dimension, value));

  function eventNode(ws: number, site: string, event: string): RowNode {
    let perWindow = tree.get(ws);
    if (perWindow === undefined) tree.set(ws, (perWindow = new Map()));
    let perSite = perWindow.get(site);
    if (perSite === undefined) perWindow.set(site, (perSite = new Map()));
    let node = perSite.get(event);
    if (node === undefined) perSite.set(event, (node = newNode()));
    return node;
  }

  return {
    add(e) {
      const ws = windowStart(e.eventTimeMs, o.windowSizeMs);
      const perWindow = caps.window(ws);
      const perSite = perWindow === undefined ? undefined : caps.site(perWindow, e.site);
      const event = capped(perSite, '$event', e.event);
      // Copy the dimensions only when the cap changes a value: the caller's array is its own.
      let dimensions = e.dimensions;
      let node: RowNode | undefined = eventNode(ws, e.site, event);
      for (let i = 0; i < dimensions.length; i++) {
        const [name, value] = dimensions[i] as [string, string];
        const kept = capped(perSite, name, value);
        if (kept !== value) {
          if (dimensions === e.dimensions) dimensions = dimensions.map(([n, v]): [string, string] => [n, v]);
          dimensions[i] = [name, kept];
        }
        if (node !== undefined) node = child(node, name, kept);
      }
      let row: PartialRow | undefined;
      if (node !== undefined) {
        row = node.row;
        if (row === undefined) {
          row = node.row = { windowStartMs: ws, windowSizeMs: o.windowSizeMs, site: e.site, event, dimensions, partial: emptyPartial() };
          rows.push(row);
        }
      } else {
        let key = `${ws}\u0000${e.site}\u0000${event}`;
        for (const [name, value] of dimensions) key += `\u0000${name}\u0001${value}`;
        row = irregular.get(key);
        if (row === undefined) {
          row = { windowStartMs: ws, windowSizeMs: o.windowSizeMs, site: e.site, event, dimensions, partial: emptyPartial() };
          irregular.set(key, row);
          rows.push(row);
        }
      }
      addToPartial(row.partial, { user: e.user, value: e.value });
    },
    drain() {
      const out = rows;
      rows = [];
      tree = new Map();
      irregular = new Map();
      return out;
    },
    get rowCount() {
      return rows.length;
    },
  };
}

/** A tree level: the row ending here, and the next dimension (one name per level) by value. */
interface RowNode {
  row: PartialRow | undefined;
  name: string | undefined;
  next: Map<string, RowNode> | undefined;
}

const newNode = (): RowNode => ({ row: undefined, name: undefined, next: undefined });

/** The child of `node` for dimension `name` = `value`; undefined when this level holds another dimension. */
function child(node: RowNode, name: string, value: string): RowNode | undefined {
  if (node.name === undefined) {
    node.name = name;
    node.next = new Map();
  } else if (node.name !== name) return undefined;
  const next = node.next as Map<string, RowNode>;
  let c = next.get(value);
  if (c === undefined) next.set(value, (c = newNode()));
  return c;
}
