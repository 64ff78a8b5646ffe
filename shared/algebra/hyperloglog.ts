/**
 * HyperLogLog with precision 14 (16384 registers, 0.81 % standard error).
 *
 * Register layout is the wire and storage contract: index = top 14 bits of the 64-bit hash,
 * rank = leading zeros of the remaining 50 bits + 1 (1..51). ClickHouse stores the non-zero
 * registers as `Tuple(Array(UInt16), Array(UInt8))` and merges them with `maxMap`, so the
 * estimator below is repeated verbatim in `schemas/clickhouse/001_sketch_functions.sql`.
 */
import type { Hash64 } from './hash.ts';

/** Number of index bits. */
export const HLL_PRECISION = 14;
/** Number of registers, m = 2^p. */
export const HLL_REGISTERS = 1 << HLL_PRECISION;
/** Largest possible rank: 64 - p + 1. */
export const HLL_MAX_RANK = 64 - HLL_PRECISION + 1;

// Most partials (one per window x key) see a handful of users. Past ~512 registers the
// 16 KiB dense array is no bigger than the sparse list and much faster to merge.
const SPARSE_MAX = 512;
// Sparse registers are packed as index · 64 + rank (rank ≤ 51 < 64), so ascending packed
// values are ascending indices and one small-integer array holds both halves.
const RANK_BITS = 6;
const RANK_MASK = (1 << RANK_BITS) - 1;
/** Codec hook: a sparse register is packed as index · HLL_PACKED_RANK_SPAN + rank. */
export const HLL_PACKED_RANK_SPAN = 1 << RANK_BITS;
// Below this many source registers a merge inserts one by one; above it walks both lists once.
const MERGE_BY_INSERT_MAX = 8;
const Q = 64 - HLL_PRECISION;
const ALPHA_INF = 1 / (2 * Math.LN2);

/** Distinct-count sketch; opaque to callers, use the `hll*` functions. */
export interface HyperLogLog {
  readonly kind: 'hll';
}

class Hll implements HyperLogLog {
  readonly kind = 'hll' as const;
  // A sorted small-integer array rather than a Map: the aggregator builds and merges one of
  // these per partial row, and a Map costs an allocation-heavy hash table for 1–6 entries.
  // Sorted order also makes hllToRegisters a copy instead of a sort.
  sparse: number[] | null = [];
  dense: Uint8Array | null = null;
}

function impl(h: HyperLogLog): Hll {
  return h as Hll;
}

function toDense(h: Hll): Uint8Array {
  if (h.dense !== null) return h.dense;
  const dense = new Uint8Array(HLL_REGISTERS);
  for (const packed of h.sparse ?? []) dense[packed >>> RANK_BITS] = packed & RANK_MASK;
  h.dense = dense;
  h.sparse = null;
  return dense;
}

function setMax(h: Hll, index: number, rank: number): void {
  if (h.dense !== null) {
    if (rank > (h.dense[index] as number)) h.dense[index] = rank;
    return;
  }
  const sparse = h.sparse as number[];
  let lo = 0;
  let hi = sparse.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sparse[mid] as number) >>> RANK_BITS < index) lo = mid + 1;
    else hi = mid;
  }
  const packed = (index << RANK_BITS) | rank;
  if (lo < sparse.length) {
    const current = sparse[lo] as number;
    if (current >>> RANK_BITS === index) {
      if (rank > (current & RANK_MASK)) sparse[lo] = packed;
      return;
    }
    sparse.splice(lo, 0, packed);
  } else {
    sparse.push(packed);
  }
  if (sparse.length > SPARSE_MAX) toDense(h);
}

/** Register-wise max of two sorted sparse lists in one pass. */
function mergeSparse(a: number[], b: number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i] as number;
    const y = b[j] as number;
    const xi = x >>> RANK_BITS;
    const yi = y >>> RANK_BITS;
    if (xi < yi) {
      out.push(x);
      i++;
    } else if (yi < xi) {
      out.push(y);
      j++;
    } else {
      out.push(x > y ? x : y); // same index: the larger packed value has the larger rank
      i++;
      j++;
    }
  }
  while (i < a.length) out.push(a[i++] as number);
  while (j < b.length) out.push(b[j++] as number);
  return out;
}

/** Creates an empty sketch (sparse until it grows). */
export function createHll(): HyperLogLog {
  return new Hll();
}

/**
 * Adds one hashed item (mutates `h`).
 * @example hllAdd(users, hash64FromHex(pseudonym))
 */
export function hllAdd(h: HyperLogLog, x: Hash64): void {
  const index = x.hi >>> (32 - HLL_PRECISION);
  const restHi = x.hi & ((1 << (32 - HLL_PRECISION)) - 1);
  // 18 remaining bits of `hi` then 32 of `lo`; clz32(0) = 32 makes an all-zero tail rank 51.
  const rank = restHi !== 0 ? Math.clz32(restHi) - (HLL_PRECISION - 1) : 32 - HLL_PRECISION + 1 + Math.clz32(x.lo);
  setMax(impl(h), index, rank);
}

/** Merges `src` into `target` (register-wise max, mutates `target`). */
export function hllMergeInto(target: HyperLogLog, src: HyperLogLog): void {
  const t = impl(target);
  const s = impl(src);
  if (s.dense !== null) {
    const dense = toDense(t);
    const from = s.dense;
    for (let i = 0; i < HLL_REGISTERS; i++) {
      const r = from[i] as number;
      if (r > (dense[i] as number)) dense[i] = r;
    }
    return;
  }
  const from = s.sparse as number[];
  if (t.sparse !== null) {
    // The aggregator's first merge into a fresh cell: a copy is that merge (a sparse list never
    // holds more than SPARSE_MAX registers).
    if (t.sparse.length === 0) {
      t.sparse = from.slice();
      return;
    }
    if (from.length > MERGE_BY_INSERT_MAX) {
      t.sparse = mergeSparse(t.sparse, from);
      if (t.sparse.length > SPARSE_MAX) toDense(t);
      return;
    }
  }
  for (const packed of from) setMax(t, packed >>> RANK_BITS, packed & RANK_MASK);
}

/** Returns an independent copy. */
export function cloneHll(h: HyperLogLog): HyperLogLog {
  const s = impl(h);
  const copy = new Hll();
  if (s.dense !== null) {
    copy.sparse = null;
    copy.dense = s.dense.slice();
  } else {
    copy.sparse = (s.sparse as number[]).slice();
  }
  return copy;
}

/** Pure merge: a new sketch equal to the union of `a` and `b`. */
export function hllMerge(a: HyperLogLog, b: HyperLogLog): HyperLogLog {
  const out = cloneHll(a);
  hllMergeInto(out, b);
  return out;
}

// The two series below are written as finite sums over k = 1..63 in the same order as the SQL
// functions (not as Ertl's loop-until-stable), so JS and ClickHouse agree to a few ulps. Terms
// past k ≈ 30 are exactly 0 (σ) or < 1e-30 (τ) for every register state, so nothing is lost.
const SERIES_TERMS = 63;

// σ(x) = x + Σ_{k≥1} x^(2^k)·2^(k−1); σ(1) = ∞.
function sigma(x: number): number {
  if (x >= 1) return Number.POSITIVE_INFINITY;
  let sum = 0;
  for (let k = 1; k <= SERIES_TERMS; k++) sum += Math.pow(x, 2 ** k) * 2 ** (k - 1);
  return x + sum;
}

// τ(x) = (1/3)(1 − x − Σ_{k≥1} (1 − x^(2^−k))²·2^−k); τ(0) = τ(1) = 0.
function tau(x: number): number {
  if (x === 0 || x === 1) return 0;
  let sum = 0;
  for (let k = 1; k <= SERIES_TERMS; k++) sum += Math.pow(1 - Math.pow(x, 2 ** -k), 2) * 2 ** -k;
  return (1 - x - sum) / 3;
}

/** Histogram C[k] = number of registers equal to k, k = 0..51. */
function registerHistogram(h: Hll): number[] {
  const counts = new Array<number>(HLL_MAX_RANK + 1).fill(0);
  if (h.dense !== null) {
    for (let i = 0; i < HLL_REGISTERS; i++) counts[h.dense[i] as number]! += 1;
  } else {
    const sparse = h.sparse as number[];
    counts[0] = HLL_REGISTERS - sparse.length;
    for (const packed of sparse) counts[packed & RANK_MASK]! += 1;
  }
  return counts;
}

/**
 * Estimated number of distinct items: Otmar Ertl's improved raw estimator ("New cardinality
 * estimation algorithms for HyperLogLog sketches", 2017). It needs no bias tables and is
 * accurate from 0 to far beyond 10^9, and it is simple enough to repeat exactly in SQL.
 */
export function hllEstimate(h: HyperLogLog): number {
  const c = registerHistogram(impl(h));
  const m = HLL_REGISTERS;
  // z = m·σ(C0/m) + Σ_{k=1..q} C_k·2^−k + m·τ(1 − C_{q+1}/m)·2^−q, as in tributary_hll_estimate.
  let harmonic = 0;
  for (let k = 1; k <= Q; k++) harmonic += (c[k] as number) * 2 ** -k;
  const z = m * sigma((c[0] as number) / m) + harmonic + m * tau(1 - (c[Q + 1] as number) / m) * 2 ** -Q;
  return (ALPHA_INF * m * m) / z;
}

/**
 * Non-zero registers sorted by index: exactly the `Tuple(Array(UInt16), Array(UInt8))` stored
 * in ClickHouse and merged there with `maxMap`.
 */
export function hllToRegisters(h: HyperLogLog): { index: number[]; rank: number[] } {
  const s = impl(h);
  const index: number[] = [];
  const rank: number[] = [];
  if (s.dense !== null) {
    for (let i = 0; i < HLL_REGISTERS; i++) {
      const r = s.dense[i] as number;
      if (r !== 0) {
        index.push(i);
        rank.push(r);
      }
    }
    return { index, rank };
  }
  for (const packed of s.sparse as number[]) {
    index.push(packed >>> RANK_BITS);
    rank.push(packed & RANK_MASK);
  }
  return { index, rank };
}

/**
 * Rebuilds a sketch from registers (e.g. read back from ClickHouse). Duplicate indices take
 * the max rank, rank 0 entries are ignored.
 * @throws RangeError on mismatched lengths, an index outside 0..16383 or a rank outside 0..51.
 */
export function hllFromRegisters(r: { index: number[]; rank: number[] }): HyperLogLog {
  if (r.index.length !== r.rank.length) {
    throw new RangeError(`hllFromRegisters: ${r.index.length} indices but ${r.rank.length} ranks`);
  }
  const h = new Hll();
  for (let i = 0; i < r.index.length; i++) {
    const index = r.index[i] as number;
    const rank = r.rank[i] as number;
    if (!Number.isInteger(index) || index < 0 || index >= HLL_REGISTERS) {
      throw new RangeError(`hllFromRegisters: register index ${index} outside 0..${HLL_REGISTERS - 1}`);
    }
    if (!Number.isInteger(rank) || rank < 0 || rank > HLL_MAX_RANK) {
      throw new RangeError(`hllFromRegisters: rank ${rank} outside 0..${HLL_MAX_RANK}`);
    }
    if (rank !== 0) setMax(h, index, rank);
  }
  return h;
}

/** Number of non-zero registers (sizes the sparse wire form without materialising it). */
export function hllNonZeroRegisters(h: HyperLogLog): number {
  const s = impl(h);
  if (s.dense === null) return (s.sparse as number[]).length;
  let n = 0;
  for (let i = 0; i < HLL_REGISTERS; i++) if (s.dense[i] !== 0) n++;
  return n;
}

/** True when both sketches hold identical registers, whatever their representation. */
export function hllEquals(a: HyperLogLog, b: HyperLogLog): boolean {
  const x = hllToRegisters(a);
  const y = hllToRegisters(b);
  if (x.index.length !== y.index.length) return false;
  for (let i = 0; i < x.index.length; i++) {
    if (x.index[i] !== y.index[i] || x.rank[i] !== y.rank[i]) return false;
  }
  return true;
}

/** Codec hook: the dense register array if the sketch is dense (do not mutate). */
export function hllDenseView(h: HyperLogLog): Uint8Array | null {
  return impl(h).dense;
}

/** Codec hook: wraps 16384 already-validated ranks without copying. */
export function hllFromDense(ranks: Uint8Array): HyperLogLog {
  const h = new Hll();
  h.sparse = null;
  h.dense = ranks;
  return h;
}

/**
 * Codec hook: wraps registers already validated by the decoder, packed as index · 64 + rank
 * with strictly ascending indices and ranks 1..51, without copying or re-sorting them.
 */
export function hllFromSortedPacked(packed: number[]): HyperLogLog {
  const h = new Hll();
  h.sparse = packed;
  if (packed.length > SPARSE_MAX) toDense(h);
  return h;
}
