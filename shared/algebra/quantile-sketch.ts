/**
 * DDSketch-style quantile sketch with a 1 % relative-error guarantee.
 *
 * Own implementation rather than @datadog/sketches-js: the bin layout (integer key -> count)
 * is stored in ClickHouse as `Tuple(Array(Int32), Array(UInt64))`, merged with `sumMap`, and
 * read by `tributary_sketch_quantile` in SQL, so the key mapping and the quantile rule must be
 * identical byte-for-byte in JS and SQL.
 */

/** Relative accuracy α: every quantile is within α of the true order statistic. */
export const SKETCH_RELATIVE_ACCURACY = 0.01;
/** γ = (1 + α) / (1 − α): bin k covers (γ^(k−1−BIAS), γ^(k−BIAS)]. */
export const SKETCH_GAMMA = (1 + SKETCH_RELATIVE_ACCURACY) / (1 - SKETCH_RELATIVE_ACCURACY);
/** Values with |x| ≤ this share key 0 and read back as 0 (absolute, not relative, error). */
export const SKETCH_MIN_INDEXABLE = 1e-9;
/**
 * Key offset so every |x| > MIN_INDEXABLE gets a key ≥ 1: 1 + ceil(−log_γ(1e-9)) = 1038.
 * A literal (checked by a test) because the SQL function hard-codes the same number.
 */
export const SKETCH_KEY_BIAS = 1038;
/**
 * At most this many bins; beyond it the lowest keys are folded into the lowest kept key.
 * 4096 bins at α = 1 % span γ^4096 ≈ 10^35, so real metrics never collapse; if they do,
 * only quantiles that land in the folded low range lose their guarantee.
 */
export const SKETCH_MAX_BINS = 4096;

const LN_GAMMA = Math.log(SKETCH_GAMMA);
const INT32_MAX = 2 ** 31 - 1;
// Below this many source bins a merge inserts one by one; above it walks both lists once.
const MERGE_BY_INSERT_MAX = 8;

/** Quantile sketch; opaque to callers, use the `sketch*` functions. */
export interface QuantileSketch {
  readonly kind: 'quantile_sketch';
}

class Sketch implements QuantileSketch {
  readonly kind = 'quantile_sketch' as const;
  // Bins as one array sorted by key, [key0, count0, key1, count1, …], rather than a Map: the
  // aggregator builds and keeps one sketch per partial row and per cell, most with a handful
  // of bins, where a Map's hash table (or a second array) is most of the memory and garbage.
  // Sorted keys also make sketchToBins and collapse() sort-free.
  bins: number[] = [];
  total = 0;
  // Lowest kept key once a collapse happened; keys below it go straight into it, which is
  // exactly what a collapse right after the insert would do (see collapse()).
  floor: number | null = null;
}

function impl(s: QuantileSketch): Sketch {
  return s as Sketch;
}

/** Monotone integer key of a value (the bin it falls in). */
export function sketchKey(value: number): number {
  const a = Math.abs(value);
  if (a <= SKETCH_MIN_INDEXABLE) return 0;
  const k = Math.ceil(Math.log(a) / LN_GAMMA) + SKETCH_KEY_BIAS;
  return value > 0 ? k : -k;
}

/**
 * Representative value of a key: 2·γ^(|k|−BIAS)/(γ+1), the point of its bin whose relative
 * distance to both bin edges is α. Same expression, same operation order, as the SQL.
 */
export function sketchKeyValue(key: number): number {
  if (key === 0) return 0;
  return (Math.sign(key) * 2 * Math.pow(SKETCH_GAMMA, Math.abs(key) - SKETCH_KEY_BIAS)) / (SKETCH_GAMMA + 1);
}

// Keep the SKETCH_MAX_BINS highest keys and fold everything below into the lowest kept one.
// This rule is associative: collapse(collapse(A ∪ B) ∪ C) = collapse(A ∪ B ∪ C), because the
// threshold of a superset is never lower, so merge order never changes the bins.
function collapse(s: Sketch): void {
  const cut = 2 * (s.bins.length / 2 - SKETCH_MAX_BINS);
  let folded = 0;
  for (let i = 1; i < cut; i += 2) folded += s.bins[i] as number;
  s.bins = s.bins.slice(cut);
  s.bins[1] = (s.bins[1] as number) + folded;
  s.floor = s.bins[0] as number;
}

/** Position (in bins) of `key`, or where it would be inserted. */
function binIndex(bins: number[], key: number): number {
  let lo = 0;
  let hi = bins.length / 2;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((bins[2 * mid] as number) < key) lo = mid + 1;
    else hi = mid;
  }
  return 2 * lo;
}

function addToBin(s: Sketch, key: number, count: number): void {
  const k = s.floor !== null && key < s.floor ? s.floor : key;
  const bins = s.bins;
  const n = bins.length;
  if (n === 0 || (bins[n - 2] as number) < k) {
    bins.push(k, count);
  } else {
    const i = binIndex(bins, k);
    if (bins[i] === k) bins[i + 1] = (bins[i + 1] as number) + count;
    else bins.splice(i, 0, k, count);
  }
  s.total += count;
}

/** Bin-wise sum of `src` into `t` in one pass over both sorted lists (keys below the floor go into it). */
function mergeBins(t: Sketch, src: Sketch): void {
  const out: number[] = [];
  const floor = t.floor;
  const a = t.bins;
  const b = src.bins;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const ka = i < a.length ? (a[i] as number) : Number.POSITIVE_INFINITY;
    let kb = j < b.length ? (b[j] as number) : Number.POSITIVE_INFINITY;
    if (floor !== null && kb < floor) kb = floor;
    let k: number;
    let c: number;
    if (ka <= kb) {
      k = ka;
      c = a[i + 1] as number;
      i += 2;
    } else {
      k = kb;
      c = b[j + 1] as number;
      j += 2;
    }
    const last = out.length - 2;
    if (last >= 0 && out[last] === k) out[last + 1] = (out[last + 1] as number) + c;
    else out.push(k, c);
  }
  t.bins = out;
  t.total += src.total;
}

// Collapsing once after a batch of adds equals collapsing after each add (associativity above).
function bound(s: Sketch): void {
  if (s.bins.length > 2 * SKETCH_MAX_BINS) collapse(s);
}

function checkCount(count: number, where: string): void {
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new RangeError(`${where}: count must be a positive safe integer, got ${count}`);
  }
}

/** Creates an empty sketch. */
export function createSketch(): QuantileSketch {
  return new Sketch();
}

/**
 * Adds `value` `count` times (mutates `s`).
 * @throws RangeError if `value` is not finite or `count` is not a positive safe integer.
 * @example sketchAdd(latency, 12.5)
 */
export function sketchAdd(s: QuantileSketch, value: number, count = 1): void {
  if (!Number.isFinite(value)) throw new RangeError(`sketchAdd: value must be finite, got ${value}`);
  checkCount(count, 'sketchAdd');
  const sketch = impl(s);
  addToBin(sketch, sketchKey(value), count);
  bound(sketch);
}

/** Merges `src` into `target` (bin-wise sum, mutates `target`). */
export function sketchMergeInto(target: QuantileSketch, src: QuantileSketch): void {
  const t = impl(target);
  const s = impl(src);
  if (t.bins.length === 0 && t.floor === null) {
    // The aggregator's first merge into a fresh cell: a copy is that merge (a sketch never
    // holds more than SKETCH_MAX_BINS bins, so nothing to collapse).
    t.bins = s.bins.slice();
    t.total += s.total;
    return;
  }
  if (s.bins.length > 2 * MERGE_BY_INSERT_MAX) mergeBins(t, s);
  else for (let i = 0, n = s.bins.length; i < n; i += 2) addToBin(t, s.bins[i] as number, s.bins[i + 1] as number);
  bound(t);
}

/** Returns an independent copy. */
export function cloneSketch(s: QuantileSketch): QuantileSketch {
  const from = impl(s);
  const copy = new Sketch();
  copy.bins = from.bins.slice();
  copy.total = from.total;
  copy.floor = from.floor;
  return copy;
}

/**
 * A new sketch equal to `src` merged into an empty one: the same bins and count, and no floor
 * (only a collapse sets one, and merging at most SKETCH_MAX_BINS bins never collapses).
 */
export function sketchCopyOf(src: QuantileSketch): QuantileSketch {
  const from = impl(src);
  const copy = new Sketch();
  copy.bins = from.bins.slice();
  copy.total = 0 + from.total;
  return copy;
}

/** Pure merge: a new sketch holding both inputs. */
export function sketchMerge(a: QuantileSketch, b: QuantileSketch): QuantileSketch {
  const out = cloneSketch(a);
  sketchMergeInto(out, b);
  return out;
}

/** Lowest and highest key with a count, or undefined for an empty sketch. */
export function sketchKeyRange(s: QuantileSketch): { min: number; max: number } | undefined {
  const bins = impl(s).bins;
  if (bins.length === 0) return undefined;
  return { min: bins[0] as number, max: bins[bins.length - 2] as number };
}

/** Number of values added. */
export function sketchCount(s: QuantileSketch): number {
  return impl(s).total;
}

/**
 * The q-quantile, or undefined for an empty sketch. Lower-rank rule (as DDSketch): with
 * rank = q·(n−1), the value of the first bin whose cumulative count exceeds rank, i.e. the
 * bin holding order statistic floor(rank). `tributary_sketch_quantile` applies the same rule.
 * @throws RangeError if q is outside [0, 1].
 * @example sketchQuantile(latency, 0.95)
 */
export function sketchQuantile(s: QuantileSketch, q: number): number | undefined {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`sketchQuantile: q must be within [0, 1], got ${q}`);
  const { key, count } = sketchToBins(s);
  let n = 0;
  for (const c of count) n += c;
  if (n === 0) return undefined;
  const rank = q * (n - 1);
  let cumulative = 0;
  for (let i = 0; i < key.length; i++) {
    cumulative += count[i] as number;
    if (cumulative > rank) return sketchKeyValue(key[i] as number);
  }
  return sketchKeyValue(key[key.length - 1] as number);
}

/**
 * Bins sorted by key: exactly the `Tuple(Array(Int32), Array(UInt64))` stored in ClickHouse
 * and merged there with `sumMap`.
 */
export function sketchToBins(s: QuantileSketch): { key: number[]; count: number[] } {
  const bins = impl(s).bins;
  const key: number[] = [];
  const count: number[] = [];
  for (let i = 0; i < bins.length; i += 2) {
    key.push(bins[i] as number);
    count.push(bins[i + 1] as number);
  }
  return { key, count };
}

/**
 * Rebuilds a sketch from bins (e.g. read back from ClickHouse, where sumMap does not
 * collapse). Duplicate keys are summed; more than SKETCH_MAX_BINS bins are collapsed.
 * @throws RangeError on mismatched lengths, a non-Int32 key or a non-positive count.
 */
export function sketchFromBins(b: { key: number[]; count: number[] }): QuantileSketch {
  if (b.key.length !== b.count.length) {
    throw new RangeError(`sketchFromBins: ${b.key.length} keys but ${b.count.length} counts`);
  }
  const s = new Sketch();
  for (let i = 0; i < b.key.length; i++) {
    const key = b.key[i] as number;
    const count = b.count[i] as number;
    if (!Number.isInteger(key) || Math.abs(key) > INT32_MAX) {
      throw new RangeError(`sketchFromBins: key ${key} is not an Int32`);
    }
    checkCount(count, 'sketchFromBins');
    addToBin(s, key, count);
  }
  bound(s);
  return s;
}

/** Number of bins in use (≤ SKETCH_MAX_BINS). */
export function sketchBinCount(s: QuantileSketch): number {
  return impl(s).bins.length / 2;
}

/** True when both sketches hold identical bins. */
export function sketchEquals(a: QuantileSketch, b: QuantileSketch): boolean {
  const x = impl(a);
  const y = impl(b);
  if (x.bins.length !== y.bins.length || x.total !== y.total) return false;
  for (let i = 0; i < x.bins.length; i++) if (x.bins[i] !== y.bins[i]) return false;
  return true;
}

/**
 * Codec hook: wraps bins already validated by the decoder, as [key0, count0, key1, count1, …]
 * (strictly ascending Int32 keys, at most SKETCH_MAX_BINS, positive counts summing to
 * `total`), without copying or sorting.
 */
export function sketchFromSortedBins(bins: number[], total: number): QuantileSketch {
  const s = new Sketch();
  s.bins = bins;
  s.total = total;
  return s;
}
