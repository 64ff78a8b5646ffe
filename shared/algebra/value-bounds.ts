/**
 * Bounds on what a partial may carry, re-checked by the aggregator on every envelope it reads
 * (docs/SECURITY.md "Bounded values"). Edges refuse event values beyond ±{@link MAX_VALUE_MAGNITUDE}
 * already; envelopes that reach Kafka another way (produced directly, a buggy or forged edge)
 * are held to the same bound here, so no sum, extreme or quantile of a site can become
 * infinite or NaN.
 */
import type { PartialAggregate } from './partial-aggregate.ts';
import { sketchCount, sketchKey, sketchKeyRange } from './quantile-sketch.ts';

/** Largest |value| an event may carry (the edge's schema bound, properties.value / revenue). */
export const MAX_VALUE_MAGNITUDE = 1e15;

/**
 * Most events one envelope row may count. No edge flushes this many events of one window and
 * key at once; the bound keeps the UInt64 event counters of ClickHouse 2^24 forged rows away
 * from wrapping around.
 */
export const MAX_ROW_EVENTS = 2 ** 40;

/** Earliest window start the aggregator takes: 1970-01-01, as the edge's event-time floor. */
export const MIN_WINDOW_START_MS = 0;

/** Latest window start the aggregator takes: 2299-12-31, the end of ClickHouse's DateTime64 range. */
export const MAX_WINDOW_START_MS = 10_413_705_600_000;

const MAX_SKETCH_KEY = sketchKey(MAX_VALUE_MAGNITUDE);

/**
 * Why `p` could not have been built from bounded values, or undefined when it could:
 * finite extremes within ±{@link MAX_VALUE_MAGNITUDE}, |sum| ≤ valueCount × that bound, sketch
 * bins no further out than the bound's key and holding exactly valueCount values.
 * @example const why = partialOutOfBounds(row.partial); if (why) return dlq('value_out_of_bounds', why);
 */
export function partialOutOfBounds(p: PartialAggregate): string | undefined {
  if (p.count > MAX_ROW_EVENTS) return `count ${p.count} is above ${MAX_ROW_EVENTS} (2^40) events per row`;
  if (p.valueCount > p.count) return `valueCount ${p.valueCount} is above count ${p.count}`;
  if (p.valueCount === 0) {
    if (p.sum !== 0 || p.min !== Number.POSITIVE_INFINITY || p.max !== Number.NEGATIVE_INFINITY) return 'sum, min or max set without any value (valueCount 0)';
  } else {
    if (!(Math.abs(p.min) <= MAX_VALUE_MAGNITUDE && Math.abs(p.max) <= MAX_VALUE_MAGNITUDE)) return `min ${p.min} or max ${p.max} is not a finite number within ±${MAX_VALUE_MAGNITUDE}`;
    if (p.min > p.max) return `min ${p.min} is above max ${p.max}`;
    // Float64 rounding of a sum of bounded values stays far inside a 1e-9 relative margin.
    if (!(Math.abs(p.sum) <= p.valueCount * MAX_VALUE_MAGNITUDE * (1 + 1e-9))) return `sum ${p.sum} is not a finite number within ±valueCount × ${MAX_VALUE_MAGNITUDE}`;
  }
  if (sketchCount(p.values) !== p.valueCount) return `the quantile sketch holds ${sketchCount(p.values)} values, valueCount is ${p.valueCount}`;
  const keys = sketchKeyRange(p.values);
  if (keys !== undefined && (keys.min < -MAX_SKETCH_KEY || keys.max > MAX_SKETCH_KEY)) return `quantile sketch keys ${keys.min}..${keys.max} stand for values beyond ±${MAX_VALUE_MAGNITUDE} (keys within ±${MAX_SKETCH_KEY})`;
  return undefined;
}
