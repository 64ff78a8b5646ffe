/**
 * Binary form of one PartialAggregate, used inside envelopes and for checkpoints.
 *
 *   partial  varint count, varint valueCount, byte flags (bit 0: sum/min/max follow, else
 *            they are the identities 0/+∞/−∞), [float64 LE sum, min, max],
 *            HLL: byte 0 = empty | 1 = sparse: varint n, n × varint (index − previous − 1),
 *                 n × rank byte | 2 = dense: 16384 rank bytes (whichever is smaller),
 *            sketch: varint nBins, [svarint first key, (nBins − 1) × varint (key − previous − 1),
 *                 nBins × varint count]
 *
 * A standalone partial is framed as 'TRB', version, kind 2, then the body.
 */
import { type ByteReader, ByteWriter, uvarintSize } from './bytes.ts';
import { KIND_PARTIAL, decodeWith, writeHeader, type DecodeResult } from './codec-frame.ts';
import {
  HLL_MAX_RANK,
  HLL_REGISTERS,
  createHll,
  hllDenseView,
  HLL_PACKED_RANK_SPAN,
  hllFromDense,
  hllFromSortedPacked,
  hllNonZeroRegisters,
  hllToRegisters,
  type HyperLogLog,
} from './hyperloglog.ts';
import type { PartialAggregate } from './partial-aggregate.ts';
import { SKETCH_MAX_BINS, createSketch, sketchFromSortedBins, sketchToBins, type QuantileSketch } from './quantile-sketch.ts';

const HLL_EMPTY = 0;
const HLL_SPARSE = 1;
const HLL_DENSE = 2;
const FLAG_VALUES = 1;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** Throws RangeError unless `value` is an integer within [min, max] (encoder input checks). */
export function checkInteger(value: number, what: string, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`encode: ${what} must be an integer within [${min}, ${max}], got ${value}`);
  }
}

function writeHll(w: ByteWriter, h: HyperLogLog): void {
  const nonZero = hllNonZeroRegisters(h);
  if (nonZero === 0) {
    w.byte(HLL_EMPTY);
    return;
  }
  const regs = hllToRegisters(h);
  let sparseSize = uvarintSize(nonZero) + nonZero;
  let previous = -1;
  for (const index of regs.index) {
    sparseSize += uvarintSize(index - previous - 1);
    previous = index;
  }
  if (sparseSize <= HLL_REGISTERS) {
    w.byte(HLL_SPARSE);
    w.uvarint(nonZero);
    previous = -1;
    for (const index of regs.index) {
      w.uvarint(index - previous - 1);
      previous = index;
    }
    for (const rank of regs.rank) w.byte(rank);
    return;
  }
  w.byte(HLL_DENSE);
  const dense = hllDenseView(h);
  if (dense !== null) {
    w.bytes(dense);
    return;
  }
  const ranks = new Uint8Array(HLL_REGISTERS);
  regs.index.forEach((index, i) => (ranks[index] = regs.rank[i] as number));
  w.bytes(ranks);
}

function writeSketch(w: ByteWriter, s: QuantileSketch): void {
  const { key, count } = sketchToBins(s);
  w.uvarint(key.length);
  if (key.length === 0) return;
  w.svarint(key[0] as number);
  for (let i = 1; i < key.length; i++) w.uvarint((key[i] as number) - (key[i - 1] as number) - 1);
  for (const c of count) w.uvarint(c);
}

/** Appends the body of a partial (no header). */
export function writePartialBody(w: ByteWriter, p: PartialAggregate): void {
  checkInteger(p.count, 'count', 0, Number.MAX_SAFE_INTEGER);
  checkInteger(p.valueCount, 'valueCount', 0, Number.MAX_SAFE_INTEGER);
  w.uvarint(p.count);
  w.uvarint(p.valueCount);
  // The identities cost one flag bit instead of 24 bytes: most rows carry no value at all.
  const identity = p.sum === 0 && p.min === Number.POSITIVE_INFINITY && p.max === Number.NEGATIVE_INFINITY;
  if (identity) {
    w.byte(0);
  } else {
    w.byte(FLAG_VALUES);
    w.float64(p.sum);
    w.float64(p.min);
    w.float64(p.max);
  }
  writeHll(w, p.users);
  writeSketch(w, p.values);
}

/** Encodes one partial aggregate (e.g. for aggregator state checkpoints). */
export function encodePartial(p: PartialAggregate): Uint8Array {
  const w = new ByteWriter(64);
  writeHeader(w, KIND_PARTIAL);
  writePartialBody(w, p);
  return w.finish();
}

function readHll(r: ByteReader): HyperLogLog {
  const start = r.pos;
  const tag = r.byte('hll tag');
  if (tag === HLL_EMPTY) return createHll();
  if (tag === HLL_DENSE) {
    const ranks = r.bytes(HLL_REGISTERS, 'hll dense registers');
    for (let i = 0; i < HLL_REGISTERS; i++) {
      if ((ranks[i] as number) > HLL_MAX_RANK) r.fail('malformed', `hll register ${i} has rank ${ranks[i]} > ${HLL_MAX_RANK}`, start);
    }
    return hllFromDense(ranks.slice());
  }
  if (tag !== HLL_SPARSE) return r.fail('malformed', `unknown hll tag ${tag}`, start);
  // Each register needs at least one gap byte and one rank byte.
  const n = r.count('hll register count', 2);
  if (n === 0 || n > HLL_REGISTERS) r.fail('malformed', `hll sparse register count ${n} outside 1..${HLL_REGISTERS}`, start);
  // Gaps make indices strictly ascending, so the registers go into the sketch as read, in the
  // packed sparse form of hyperloglog.ts, with no sort and no second copy.
  const packed: number[] = [];
  let previous = -1;
  for (let i = 0; i < n; i++) {
    previous += r.uvarint('hll register gap') + 1;
    if (previous >= HLL_REGISTERS) r.fail('malformed', `hll register index ${previous} ≥ ${HLL_REGISTERS}`);
    packed.push(previous * HLL_PACKED_RANK_SPAN);
  }
  r.need(n, 'hll ranks');
  for (let i = 0; i < n; i++) {
    const v = r.byteUnchecked();
    if (v < 1 || v > HLL_MAX_RANK) r.fail('malformed', `hll sparse rank ${v} outside 1..${HLL_MAX_RANK}`, start);
    packed[i] = (packed[i] as number) + v;
  }
  return hllFromSortedPacked(packed);
}

function readSketch(r: ByteReader): QuantileSketch {
  const start = r.pos;
  // Each bin needs at least one key byte and one count byte.
  const n = r.count('sketch bin count', 2);
  if (n === 0) return createSketch();
  if (n > SKETCH_MAX_BINS) r.fail('malformed', `sketch has ${n} bins, more than ${SKETCH_MAX_BINS}`, start);
  // Interleaved [key, count, …] as quantile-sketch.ts keeps them; counts fill in on the second pass.
  const bins: number[] = [];
  let k = r.svarint('sketch first key');
  for (let i = 0; i < n; i++) {
    if (i > 0) k += r.uvarint('sketch key gap') + 1;
    if (k < INT32_MIN || k > INT32_MAX) r.fail('malformed', `sketch key ${k} is not an Int32`);
    bins.push(k, 0);
  }
  let total = 0;
  for (let i = 0; i < n; i++) {
    const c = r.uvarint('sketch bin count');
    if (c === 0) r.fail('malformed', 'sketch bin with count 0');
    total += c;
    if (total > Number.MAX_SAFE_INTEGER) r.fail('malformed', 'sketch total count exceeds 2^53 − 1');
    bins[2 * i + 1] = c;
  }
  // Keys are strictly ascending by construction and n ≤ SKETCH_MAX_BINS: nothing to sort or collapse.
  return sketchFromSortedBins(bins, total);
}

/** Reads the body of a partial (no header); throws ReadFailure on bad input. */
export function readPartialBody(r: ByteReader): PartialAggregate {
  const count = r.uvarint('count');
  const valueCount = r.uvarint('valueCount');
  const flagsAt = r.pos;
  const flags = r.byte('flags');
  if ((flags & ~FLAG_VALUES) !== 0) r.fail('malformed', `unknown flag bits ${flags}`, flagsAt);
  let sum = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  if (flags & FLAG_VALUES) {
    sum = r.float64('sum');
    min = r.float64('min');
    max = r.float64('max');
  }
  const users = readHll(r);
  const values = readSketch(r);
  return { count, valueCount, sum, min, max, users, values };
}

/** Decodes a single partial written by {@link encodePartial}. Never throws. */
export function decodePartial(bytes: Uint8Array): DecodeResult<PartialAggregate> {
  return decodeWith(bytes, KIND_PARTIAL, readPartialBody);
}
