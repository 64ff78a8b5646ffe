/**
 * Binary codec for the edge -> Kafka envelope (value of topic `partials`).
 *
 * Layout, version 1 (varint = unsigned LEB128, svarint = zigzag varint, str = varint byte
 * length + UTF-8):
 *
 *   header   'T' 'R' 'B', version = 1, kind = 1
 *   envelope varint nStrings, str × nStrings    string table: names and values repeat a lot
 *            varint sourceId (table index), varint sequence, svarint watermarkMs,
 *            svarint createdAtMs, varint nRows, row × nRows
 *   row      svarint windowStartMs − previous row's (first: − 0), varint windowSizeMs,
 *            varint site, varint event, varint nDims, (varint name, varint value) × nDims,
 *            partial body (see partial-codec.ts)
 *
 * Decoding never throws: every length is checked against the bytes left before anything is
 * allocated, values are range-checked, and trailing bytes are rejected.
 */
import { ByteWriter } from './bytes.ts';
import { ENVELOPE_VERSION, KIND_ENVELOPE, decodeWith, writeHeader, type DecodeResult } from './codec-frame.ts';
import type { PartialAggregate } from './partial-aggregate.ts';
import { checkInteger, readPartialBody, writePartialBody } from './partial-codec.ts';

/** Partial results of one window and key. */
export interface PartialRow {
  windowStartMs: number;
  windowSizeMs: number;
  site: string;
  event: string;
  /** Sorted by name. */
  dimensions: Array<[name: string, value: string]>;
  partial: PartialAggregate;
}

/** One flush of an edge source. */
export interface PartialEnvelope {
  version: 1;
  sourceId: string;
  /** Strictly increasing per source. */
  sequence: number;
  /** Source watermark at flush. */
  watermarkMs: number;
  createdAtMs: number;
  /** May be empty: a heartbeat that only advances the watermark. */
  rows: PartialRow[];
}

// Window starts are written as deltas of each other; bounding times to ±(2^51 − 1) ms (year
// ±71 000) keeps every delta within the zigzag-safe ±(2^52 − 1).
const MAX_TIME_MAGNITUDE = 2 ** 51 - 1;

/**
 * Encodes an envelope into the compact binary wire form.
 * @throws RangeError when a field is out of range (non-integer count, negative sequence…).
 * @example await producer.send({ topic: 'partials', messages: [{ key: e.sourceId, value: encodeEnvelope(e) }] })
 */
export function encodeEnvelope(e: PartialEnvelope): Uint8Array {
  if (e.version !== ENVELOPE_VERSION) throw new RangeError(`encodeEnvelope: version must be ${ENVELOPE_VERSION}, got ${String(e.version)}`);
  checkInteger(e.sequence, 'sequence', 0, Number.MAX_SAFE_INTEGER);
  checkInteger(e.watermarkMs, 'watermarkMs', -MAX_TIME_MAGNITUDE, MAX_TIME_MAGNITUDE);
  checkInteger(e.createdAtMs, 'createdAtMs', -MAX_TIME_MAGNITUDE, MAX_TIME_MAGNITUDE);

  const table = new Map<string, number>();
  const strings: string[] = [];
  const ref = (s: string): number => {
    let i = table.get(s);
    if (i === undefined) {
      i = strings.length;
      table.set(s, i);
      strings.push(s);
    }
    return i;
  };
  const sourceRef = ref(e.sourceId);
  const rowRefs = e.rows.map((r) => ({
    site: ref(r.site),
    event: ref(r.event),
    dims: r.dimensions.map(([name, value]) => [ref(name), ref(value)] as const),
  }));

  const w = new ByteWriter(64 + 64 * e.rows.length);
  writeHeader(w, KIND_ENVELOPE);
  w.uvarint(strings.length);
  for (const s of strings) w.string(s);
  w.uvarint(sourceRef);
  w.uvarint(e.sequence);
  w.svarint(e.watermarkMs);
  w.svarint(e.createdAtMs);
  w.uvarint(e.rows.length);
  let previousStart = 0;
  e.rows.forEach((row, i) => {
    const refs = rowRefs[i] as (typeof rowRefs)[number];
    checkInteger(row.windowStartMs, 'windowStartMs', -MAX_TIME_MAGNITUDE, MAX_TIME_MAGNITUDE);
    checkInteger(row.windowSizeMs, 'windowSizeMs', 1, Number.MAX_SAFE_INTEGER);
    w.svarint(row.windowStartMs - previousStart);
    previousStart = row.windowStartMs;
    w.uvarint(row.windowSizeMs);
    w.uvarint(refs.site);
    w.uvarint(refs.event);
    w.uvarint(refs.dims.length);
    for (const [name, value] of refs.dims) {
      w.uvarint(name);
      w.uvarint(value);
    }
    writePartialBody(w, row.partial);
  });
  return w.finish();
}

/**
 * Decodes an envelope. Never throws: garbage, truncation or trailing bytes give a typed error.
 * @example
 * const r = decodeEnvelope(message.value);
 * if (!r.ok) return dlq(r.error.code, r.error.message);
 */
export function decodeEnvelope(bytes: Uint8Array): DecodeResult<PartialEnvelope> {
  return decodeWith(bytes, KIND_ENVELOPE, (r) => {
    const nStrings = r.count('string table size');
    const strings = new Array<string>(nStrings);
    for (let i = 0; i < nStrings; i++) strings[i] = r.string('string table entry');
    const str = (what: string): string => {
      const at = r.pos;
      const i = r.uvarint(what);
      const s = strings[i];
      if (s === undefined) return r.fail('malformed', `${what}: string index ${i} outside a table of ${nStrings}`, at);
      return s;
    };
    const sourceId = str('sourceId');
    const sequence = r.uvarint('sequence');
    const time = (what: string): number => {
      const at = r.pos;
      const t = r.svarint(what);
      if (Math.abs(t) > MAX_TIME_MAGNITUDE) r.fail('malformed', `${what} ${t} is beyond ±(2^51 − 1) ms`, at);
      return t;
    };
    const watermarkMs = time('watermarkMs');
    const createdAtMs = time('createdAtMs');
    // The smallest row (one-byte varints, empty partial) takes 10 bytes.
    const nRows = r.count('row count', 10);
    const rows = new Array<PartialRow>(nRows);
    let previousStart = 0;
    for (let i = 0; i < nRows; i++) {
      const at = r.pos;
      const windowStartMs = previousStart + r.svarint('windowStartMs');
      if (Math.abs(windowStartMs) > MAX_TIME_MAGNITUDE) r.fail('malformed', `windowStartMs ${windowStartMs} is beyond ±(2^51 − 1) ms`, at);
      previousStart = windowStartMs;
      const windowSizeMs = r.uvarint('windowSizeMs');
      if (windowSizeMs === 0) r.fail('malformed', 'windowSizeMs is 0', at);
      const site = str('site');
      const event = str('event');
      const nDims = r.count('dimension count', 2);
      const dimensions = new Array<[string, string]>(nDims);
      for (let d = 0; d < nDims; d++) dimensions[d] = [str('dimension name'), str('dimension value')];
      rows[i] = { windowStartMs, windowSizeMs, site, event, dimensions, partial: readPartialBody(r) };
    }
    return { version: 1, sourceId, sequence, watermarkMs, createdAtMs, rows };
  });
}
