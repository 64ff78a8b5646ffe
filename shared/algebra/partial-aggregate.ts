/**
 * The partial aggregate of one (window, key): a commutative monoid, so edges can pre-aggregate
 * any slice of the events and the aggregator can merge slices in any order or grouping.
 */
import type { Hash64 } from './hash.ts';
import { cloneHll, createHll, hllAdd, hllEquals, hllMergeInto, type HyperLogLog } from './hyperloglog.ts';
import {
  cloneSketch,
  createSketch,
  sketchCopyOf,
  sketchAdd,
  sketchEquals,
  sketchMergeInto,
  type QuantileSketch,
} from './quantile-sketch.ts';

/** Mergeable summary of a set of events. */
export interface PartialAggregate {
  /** Events. */
  count: number;
  /** Events that carried a finite numeric value. */
  valueCount: number;
  /** Sum of values (identity 0). */
  sum: number;
  /** Smallest value (identity +Infinity). */
  min: number;
  /** Largest value (identity −Infinity). */
  max: number;
  /** Distinct pseudonymous users. */
  users: HyperLogLog;
  /** Distribution of values. */
  values: QuantileSketch;
}

/** The monoid identity: merging it changes nothing. */
export function emptyPartial(): PartialAggregate {
  return {
    count: 0,
    valueCount: 0,
    sum: 0,
    min: Number.POSITIVE_INFINITY,
    max: Number.NEGATIVE_INFINITY,
    users: createHll(),
    values: createSketch(),
  };
}

/**
 * Counts one event (mutates `p`). A value that is not a finite number is ignored rather than
 * rejected: the event still counts, it just contributes nothing to sum/min/max/quantiles.
 * @example addToPartial(p, { user: hash64FromHex(pseudonym), value: durationMs })
 */
export function addToPartial(p: PartialAggregate, e: { user?: Hash64; value?: number }): void {
  p.count += 1;
  if (e.user !== undefined) hllAdd(p.users, e.user);
  const v = e.value;
  if (typeof v === 'number' && Number.isFinite(v)) {
    p.valueCount += 1;
    p.sum += v;
    if (v < p.min) p.min = v;
    if (v > p.max) p.max = v;
    sketchAdd(p.values, v);
  }
}

/** Merges `src` into `target` (mutates `target`). */
export function mergePartialInto(target: PartialAggregate, src: PartialAggregate): void {
  target.count += src.count;
  target.valueCount += src.valueCount;
  target.sum += src.sum;
  if (src.min < target.min) target.min = src.min;
  if (src.max > target.max) target.max = src.max;
  hllMergeInto(target.users, src.users);
  sketchMergeInto(target.values, src.values);
}

/**
 * A new partial equal to `mergePartialInto(emptyPartial(), src)`, field for field (a −0 sum
 * becomes 0, a NaN extreme the identity), without building the empty sketches first: the
 * aggregator starts every new cell this way.
 */
export function mergedWithEmpty(src: PartialAggregate): PartialAggregate {
  return {
    count: 0 + src.count,
    valueCount: 0 + src.valueCount,
    sum: 0 + src.sum,
    min: src.min < Number.POSITIVE_INFINITY ? src.min : Number.POSITIVE_INFINITY,
    max: src.max > Number.NEGATIVE_INFINITY ? src.max : Number.NEGATIVE_INFINITY,
    // Register-wise max with all zeros, in either representation, is a copy.
    users: cloneHll(src.users),
    values: sketchCopyOf(src.values),
  };
}

/** Returns an independent copy. */
export function clonePartial(p: PartialAggregate): PartialAggregate {
  return { ...p, users: cloneHll(p.users), values: cloneSketch(p.values) };
}

/** Pure merge. */
export function mergePartials(a: PartialAggregate, b: PartialAggregate): PartialAggregate {
  const out = clonePartial(a);
  mergePartialInto(out, b);
  return out;
}

// 0 and −0 are the same aggregate; NaN (only reachable by summing +∞ and −∞) equals itself.
function sameNumber(a: number, b: number): boolean {
  return a === b || (Number.isNaN(a) && Number.isNaN(b));
}

/** Field-by-field equality, including HLL registers and sketch bins. */
export function partialsEqual(a: PartialAggregate, b: PartialAggregate): boolean {
  return (
    a.count === b.count &&
    a.valueCount === b.valueCount &&
    sameNumber(a.sum, b.sum) &&
    sameNumber(a.min, b.min) &&
    sameNumber(a.max, b.max) &&
    hllEquals(a.users, b.users) &&
    sketchEquals(a.values, b.values)
  );
}
