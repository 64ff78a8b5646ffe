/**
 * The aggregation algebra shared by edge and aggregator: hashing, HyperLogLog, quantile
 * sketch, partial aggregates, windows, watermarks and the envelope codec.
 * Pure and runtime-neutral: no `node:*`, no I/O, no clocks, no dependencies.
 */
export { type Hash64, hash64, hash64FromHex } from './hash.ts';
export {
  HLL_PRECISION,
  HLL_REGISTERS,
  HLL_MAX_RANK,
  type HyperLogLog,
  createHll,
  hllAdd,
  hllMergeInto,
  hllMerge,
  hllEstimate,
  hllToRegisters,
  hllFromRegisters,
  hllEquals,
  cloneHll,
} from './hyperloglog.ts';
export {
  SKETCH_RELATIVE_ACCURACY,
  SKETCH_GAMMA,
  SKETCH_MIN_INDEXABLE,
  SKETCH_KEY_BIAS,
  SKETCH_MAX_BINS,
  type QuantileSketch,
  createSketch,
  sketchAdd,
  sketchMergeInto,
  sketchMerge,
  sketchQuantile,
  sketchCount,
  sketchToBins,
  sketchFromBins,
  sketchEquals,
  sketchBinCount,
  sketchKey,
  sketchKeyValue,
  cloneSketch,
} from './quantile-sketch.ts';
export {
  type PartialAggregate,
  emptyPartial,
  addToPartial,
  mergePartialInto,
  mergedWithEmpty,
  mergePartials,
  partialsEqual,
  clonePartial,
} from './partial-aggregate.ts';
export { windowStart, windowEnd, isWindowFinal } from './window.ts';
export {
  type WatermarkTracker,
  type WatermarkSnapshot,
  type SourceWatermark,
  createWatermarkTracker,
} from './watermark.ts';
export { ENVELOPE_VERSION, type DecodeResult, type DecodeError } from './codec-frame.ts';
export { type PartialRow, type PartialEnvelope, encodeEnvelope, decodeEnvelope } from './envelope-codec.ts';
export { cellPartition, sourceOfSubSource, splitEnvelopeByCell } from './cell-routing.ts';
export { encodePartial, decodePartial } from './partial-codec.ts';
export { OTHER, createCardinalityCap, type CardinalityCap, type CardinalityCapSnapshot, type SiteValues, type WindowValues } from './cardinality-cap.ts';
export { MAX_VALUE_MAGNITUDE, MAX_ROW_EVENTS, MIN_WINDOW_START_MS, MAX_WINDOW_START_MS, partialOutOfBounds } from './value-bounds.ts';
