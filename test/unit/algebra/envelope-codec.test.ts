import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  ENVELOPE_VERSION,
  addToPartial,
  decodeEnvelope,
  decodePartial,
  emptyPartial,
  encodeEnvelope,
  encodePartial,
  hash64,
  mergePartialInto,
  partialsEqual,
  type DecodeResult,
  type PartialAggregate,
  type PartialEnvelope,
  type PartialRow,
} from '../../../shared/algebra/index.ts';

// ------------------------------------------------------------------ arbitraries

const partialArb: fc.Arbitrary<PartialAggregate> = fc
  .record({
    events: fc.array(
      fc.record({
        user: fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined }),
        value: fc.option(fc.oneof(fc.integer({ min: -1e9, max: 1e9 }), fc.double({ noNaN: true, noDefaultInfinity: true })), { nil: undefined }),
      }),
      { maxLength: 20 },
    ),
    // Sometimes enough users for the dense HLL form.
    crowd: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 500, max: 20_000 }) }),
  })
  .map(({ events, crowd }) => {
    const p = emptyPartial();
    for (const e of events) {
      addToPartial(p, {
        ...(e.user === undefined ? {} : { user: hash64(`u${e.user}`) }),
        ...(e.value === undefined ? {} : { value: e.value }),
      });
    }
    for (let i = 0; i < crowd; i++) addToPartial(p, { user: hash64(`crowd${i}`) });
    return p;
  });

const text = fc.string({ unit: 'grapheme', maxLength: 12 });
const time = fc.integer({ min: -(2 ** 51 - 1), max: 2 ** 51 - 1 });

const rowArb: fc.Arbitrary<PartialRow> = fc.record({
  windowStartMs: time,
  windowSizeMs: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  site: fc.oneof(fc.constantFrom('example.com', 'shop.example'), text),
  event: fc.oneof(fc.constantFrom('page', 'purchase'), text),
  dimensions: fc
    .uniqueArray(fc.tuple(fc.oneof(fc.constantFrom('country', 'device'), text), fc.oneof(fc.constantFrom('DE', 'mobile'), text)), {
      selector: ([name]) => name,
      maxLength: 4,
    })
    .map((dims) => dims.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
  partial: partialArb,
});

const envelopeArb: fc.Arbitrary<PartialEnvelope> = fc.record({
  version: fc.constant(1 as const),
  sourceId: text,
  sequence: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  watermarkMs: time,
  createdAtMs: time,
  rows: fc.array(rowArb, { maxLength: 6 }),
});

// ------------------------------------------------------------------ helpers

function expectEnvelopesEqual(actual: PartialEnvelope, expected: PartialEnvelope): void {
  const strip = (e: PartialEnvelope) => ({ ...e, rows: e.rows.map(({ partial: _p, ...rest }) => rest) });
  expect(strip(actual)).toEqual(strip(expected));
  expected.rows.forEach((row, i) => expect(partialsEqual(actual.rows[i]!.partial, row.partial)).toBe(true));
}

function expectWellFormed(result: DecodeResult<unknown>): void {
  if (result.ok) return;
  expect(['truncated', 'bad_magic', 'unsupported_version', 'malformed']).toContain(result.error.code);
  expect(typeof result.error.message).toBe('string');
  expect(result.error.message.length).toBeGreaterThan(0);
  expect(Number.isInteger(result.error.offset)).toBe(true);
}

function errorOf<T>(result: DecodeResult<T>) {
  if (result.ok) throw new Error('expected a decode error');
  return result.error;
}

function sampleEnvelope(users: number): PartialEnvelope {
  const p = emptyPartial();
  for (let i = 0; i < users; i++) addToPartial(p, { user: hash64(`s${i}`), value: i * 1.5 });
  addToPartial(p, { value: -3 });
  return {
    version: 1,
    sourceId: 'edge-fra-1',
    sequence: 42,
    watermarkMs: 1_714_567_890_000,
    createdAtMs: 1_714_567_895_000,
    rows: [
      { windowStartMs: 1_714_567_860_000, windowSizeMs: 60_000, site: 'example.com', event: 'page', dimensions: [['country', 'DE']], partial: p },
      { windowStartMs: 1_714_567_800_000, windowSizeMs: 60_000, site: 'example.com', event: 'page', dimensions: [], partial: emptyPartial() },
    ],
  };
}

// ------------------------------------------------------------------ tests

describe('envelope round-trip', () => {
  it('decode(encode(x)) equals x for arbitrary envelopes', () => {
    fc.assert(
      fc.property(envelopeArb, (e) => {
        const decoded = decodeEnvelope(encodeEnvelope(e));
        if (!decoded.ok) throw new Error(JSON.stringify(decoded.error));
        expectEnvelopesEqual(decoded.value, e);
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips a heartbeat with no rows and unicode names', () => {
    const heartbeat: PartialEnvelope = { version: 1, sourceId: 'edge-東京-🌸', sequence: 0, watermarkMs: -5, createdAtMs: 0, rows: [] };
    const bytes = encodeEnvelope(heartbeat);
    expect(decodeEnvelope(bytes)).toEqual({ ok: true, value: heartbeat });
  });

  it('decodePartial(encodePartial(p)) equals p', () => {
    fc.assert(
      fc.property(partialArb, (p) => {
        const decoded = decodePartial(encodePartial(p));
        if (!decoded.ok) throw new Error(JSON.stringify(decoded.error));
        expect(partialsEqual(decoded.value, p)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('round-trips the extreme times and reads from a view into a larger buffer (pooled Node Buffers)', () => {
    const e = sampleEnvelope(3);
    const extreme: PartialEnvelope = {
      ...e,
      watermarkMs: -(2 ** 51 - 1),
      createdAtMs: 2 ** 51 - 1,
      rows: [
        { ...e.rows[0]!, windowStartMs: -(2 ** 51 - 1) },
        { ...e.rows[1]!, windowStartMs: 2 ** 51 - 1 },
      ],
    };
    const bytes = encodeEnvelope(extreme);
    const pool = new Uint8Array(bytes.length + 10);
    pool.set(bytes, 3);
    const decoded = decodeEnvelope(pool.subarray(3, 3 + bytes.length));
    if (!decoded.ok) throw new Error(JSON.stringify(decoded.error));
    expectEnvelopesEqual(decoded.value, extreme);
    expect(() => encodeEnvelope({ ...e, watermarkMs: 2 ** 51 })).toThrow(RangeError);
  });

  it('writes lone surrogates as U+FFFD (as TextEncoder does)', () => {
    const decoded = decodeEnvelope(encodeEnvelope({ version: 1, sourceId: 'a\ud800b', sequence: 1, watermarkMs: 0, createdAtMs: 0, rows: [] }));
    expect(decoded.ok && decoded.value.sourceId).toBe('a\ufffdb');
  });
});

describe('string table decoding', () => {
  const envelopeWith = (sourceId: string, values: string[]): PartialEnvelope => ({
    version: 1,
    sourceId,
    sequence: 1,
    watermarkMs: 0,
    createdAtMs: 0,
    rows: values.map((v) => ({ windowStartMs: 0, windowSizeMs: 60_000, site: 's', event: 'e', dimensions: [['path', v]], partial: emptyPartial() })),
  });
  const valuesOf = (e: PartialEnvelope): string[] => e.rows.map((r) => r.dimensions[0]![1]);

  it('gives the same strings for repeated, colliding-length, non-ASCII and long values, across many envelopes', () => {
    // More distinct short strings than the shared decode cache holds, read twice: the second
    // pass meets both cached and evicted entries.
    const values = Array.from({ length: 9000 }, (_, i) => `/p/${i.toString(36)}`);
    const special = ['', 'é', '東京', 'a\u0000b', 'x'.repeat(64), 'y'.repeat(65), `${'z'.repeat(63)}é`, '/p/0 ', '/p/0'];
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < values.length; i += 500) {
        const chunk = [...values.slice(i, i + 500), ...special];
        const decoded = decodeEnvelope(encodeEnvelope(envelopeWith(`src-${pass}`, chunk)));
        if (!decoded.ok) throw new Error(JSON.stringify(decoded.error));
        expect(valuesOf(decoded.value)).toEqual(chunk);
        expect(decoded.value.sourceId).toBe(`src-${pass}`);
      }
    }
  });

  it('rejects invalid UTF-8 in a short string as malformed', () => {
    const bytes = encodeEnvelope(envelopeWith('abc', ['xy']));
    const at = bytes.indexOf(0x78); // 'x' of the table entry 'xy'
    for (const bad of [0xff, 0xc0, 0x80]) {
      const broken = bytes.slice();
      broken[at] = bad;
      expect(errorOf(decodeEnvelope(broken)).code).toBe('malformed');
    }
  });

  it('reads a Node Buffer without sharing its memory with dense registers', () => {
    const p = emptyPartial();
    for (let i = 0; i < 5000; i++) addToPartial(p, { user: hash64(`d${i}`) });
    const bytes = Buffer.from(encodePartial(p));
    const decoded = decodePartial(bytes);
    if (!decoded.ok) throw new Error(JSON.stringify(decoded.error));
    const before = Buffer.from(bytes);
    // Buffer#slice() is a view, not a copy: registers read through it would write into the message.
    for (let i = 0; i < 5000; i++) addToPartial(decoded.value, { user: hash64(`other${i}`) });
    mergePartialInto(decoded.value, p);
    expect(bytes.equals(before)).toBe(true);
  });
});

describe('compactness', () => {
  it('stores each repeated string once and shares window starts', () => {
    const rows: PartialRow[] = Array.from({ length: 200 }, (_, i) => {
      const partial = emptyPartial();
      addToPartial(partial, { user: hash64(`u${i}`) });
      return {
        windowStartMs: 1_714_567_860_000,
        windowSizeMs: 60_000,
        site: 'a-rather-long-site-name.example.com',
        event: 'page_viewed',
        dimensions: [['country', ['DE', 'FR', 'US'][i % 3] as string]],
        partial,
      };
    });
    const bytes = encodeEnvelope({ version: 1, sourceId: 'edge', sequence: 1, watermarkMs: 0, createdAtMs: 0, rows });
    const asText = new TextDecoder().decode(bytes);
    expect(asText.split('a-rather-long-site-name.example.com').length - 1).toBe(1);
    // One user per row: ~19 bytes per row including its HLL register.
    expect(bytes.length).toBeLessThan(200 * 20 + 100);
  });

  it('uses the dense HLL form only when it is smaller', () => {
    const sparse = encodePartial(sampleEnvelope(100).rows[0]!.partial);
    const dense = encodePartial(sampleEnvelope(50_000).rows[0]!.partial);
    expect(sparse.length).toBeLessThan(1000);
    expect(dense.length).toBeLessThan(16_384 + 4096 * 3);
    const back = decodePartial(dense);
    expect(back.ok && partialsEqual(back.value, sampleEnvelope(50_000).rows[0]!.partial)).toBe(true);
  });
});

describe('decoding bad input never throws', () => {
  it('garbage bytes give a typed error (or, rarely, a valid value)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expectWellFormed(decodeEnvelope(bytes));
        expectWellFormed(decodePartial(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  it('garbage after a valid header reaches deep into the decoder without throwing', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (tail) => {
        const withHeader = (kind: number) => new Uint8Array([0x54, 0x52, 0x42, ENVELOPE_VERSION, kind, ...tail]);
        expectWellFormed(decodeEnvelope(withHeader(1)));
        expectWellFormed(decodePartial(withHeader(2)));
      }),
      { numRuns: 3000 },
    );
  });

  it('every strict prefix of a valid encoding is reported as truncated', () => {
    for (const users of [3, 700, 20_000]) {
      const bytes = encodeEnvelope(sampleEnvelope(users));
      expect(decodeEnvelope(bytes).ok).toBe(true);
      for (let len = 0; len < bytes.length; len++) {
        const r = decodeEnvelope(bytes.subarray(0, len));
        expect(r.ok).toBe(false);
        expect(errorOf(r).code).toBe('truncated');
      }
    }
  });

  it('flipped bytes give a typed error or a valid value', () => {
    const samples = [encodeEnvelope(sampleEnvelope(3)), encodeEnvelope(sampleEnvelope(700))];
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), fc.constantFrom(0, 1), (at, mask, which) => {
        const bytes = samples[which]!.slice();
        const i = at % bytes.length;
        bytes[i] = bytes[i]! ^ mask;
        const r = decodeEnvelope(bytes);
        expectWellFormed(r);
        // Anything accepted must be re-encodable: it passed every range check.
        if (r.ok) expect(() => encodeEnvelope(r.value)).not.toThrow();
      }),
      { numRuns: 3000 },
    );
  });

  it('reports bad magic, unsupported version, wrong kind and trailing bytes', () => {
    const good = encodeEnvelope(sampleEnvelope(3));
    expect(errorOf(decodeEnvelope(new Uint8Array([0x7b, 0x22]))).code).toBe('bad_magic');
    expect(errorOf(decodeEnvelope(new Uint8Array([])))).toMatchObject({ code: 'truncated', offset: 0 });
    const v2 = good.slice();
    v2[3] = 2;
    expect(errorOf(decodeEnvelope(v2))).toMatchObject({ code: 'unsupported_version', offset: 3 });
    expect(errorOf(decodePartial(good)).code).toBe('malformed');
    const trailing = new Uint8Array([...good, 0]);
    expect(errorOf(decodeEnvelope(trailing))).toMatchObject({ code: 'malformed', offset: good.length });
  });

  it('rejects integers beyond 2^53 − 1 instead of rounding them', () => {
    const header = [0x54, 0x52, 0x42, ENVELOPE_VERSION, 2];
    // count = 2^53 as an 8-byte LEB128 varint: seven 0x80 bytes then 0x10.
    const count2p53 = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10];
    const rest = [0, 0, 0, 0]; // valueCount, flags, empty hll, empty sketch
    expect(errorOf(decodePartial(new Uint8Array([...header, ...count2p53, ...rest])))).toMatchObject({ code: 'malformed', offset: 5 });
    // 2^53 − 1 itself is fine.
    const max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f];
    const ok = decodePartial(new Uint8Array([...header, ...max, ...rest]));
    expect(ok.ok && ok.value.count).toBe(Number.MAX_SAFE_INTEGER);
    // Nine-byte varints and overlong encodings are malformed too.
    expect(errorOf(decodePartial(new Uint8Array([...header, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, ...rest]))).code).toBe('malformed');
    expect(errorOf(decodePartial(new Uint8Array([...header, 0x81, 0x00, ...rest]))).code).toBe('malformed');
  });

  it('does not allocate from a huge declared length', () => {
    const header = [0x54, 0x52, 0x42, ENVELOPE_VERSION, 1];
    const huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f];
    expect(errorOf(decodeEnvelope(new Uint8Array([...header, ...huge]))).code).toBe('truncated');
    expect(errorOf(decodeEnvelope(new Uint8Array([...header, 1, ...huge, 0x41]))).code).toBe('truncated');
  });

  it('rejects out-of-range registers, ranks and bins', () => {
    const partial = (body: number[]) => decodePartial(new Uint8Array([0x54, 0x52, 0x42, ENVELOPE_VERSION, 2, 1, 0, 0, ...body]));
    expect(errorOf(partial([1, 1, 0x80, 0x80, 0x01, 5, 0])).code).toBe('malformed'); // index 16384
    expect(errorOf(partial([1, 1, 0, 52, 0])).code).toBe('malformed'); // rank 52
    expect(errorOf(partial([1, 1, 0, 0, 0])).code).toBe('malformed'); // sparse rank 0
    expect(errorOf(partial([3, 0])).code).toBe('malformed'); // unknown hll tag
    expect(errorOf(partial([0, 1, 2, 0])).code).toBe('malformed'); // bin count 0
    expect(errorOf(partial([0, 1, 0x80, 0x80, 0x80, 0x80, 0x10, 1])).code).toBe('malformed'); // key 2^31 is not an Int32
    expect(partial([0, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f, 1]).ok).toBe(true); // key 2^31 − 1 is
    expect(partial([1, 1, 0, 51, 1, 2, 3]).ok).toBe(true);
  });
});

describe('encode rejects values it cannot represent (programmer error)', () => {
  it('throws RangeError for non-integer counts, negative sequences or out-of-range times', () => {
    const e = sampleEnvelope(1);
    expect(() => encodeEnvelope({ ...e, sequence: -1 })).toThrow(RangeError);
    expect(() => encodeEnvelope({ ...e, watermarkMs: 1.5 })).toThrow(RangeError);
    expect(() => encodeEnvelope({ ...e, createdAtMs: 2 ** 53 })).toThrow(RangeError);
    const bad = { ...e.rows[0]!, partial: { ...emptyPartial(), count: 0.5 } };
    expect(() => encodeEnvelope({ ...e, rows: [bad] })).toThrow(RangeError);
    expect(() => encodeEnvelope({ ...e, rows: [{ ...e.rows[0]!, windowSizeMs: 0 }] })).toThrow(RangeError);
  });
});
