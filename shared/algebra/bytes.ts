/**
 * Growable byte writer and bounds-checked reader for the envelope codec: unsigned LEB128
 * varints, zigzag for signed integers, little-endian float64, length-prefixed UTF-8.
 * Integers are limited to the safe range (< 2^53) so no value is ever silently rounded.
 */

const utf8Encoder = new TextEncoder();
// fatal: invalid UTF-8 on the wire is a malformed batch, not text to guess at.
// ignoreBOM spelled out (its default): workers-types declares both options required.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

// Every envelope repeats the same names and values (sites, events, countries, paths) in its
// string table: decoding each again costs a TextDecoder call and a fresh string that every Map
// lookup downstream must hash again. Short ASCII strings (always valid UTF-8, decoding to the
// same code units) are therefore shared by content. Cleared when full, so a high-cardinality
// value cannot grow it without bound; a hash collision is caught by comparing the bytes.
const INTERN_MAX_BYTES = 64;
const INTERN_MAX_ENTRIES = 8192;
const interned = new Map<number, string>();

/** The string of `len` ASCII bytes at `from`, shared with earlier reads; undefined if not ASCII. */
function internedAscii(buf: Uint8Array, from: number, len: number): string | undefined {
  const end = from + len;
  let h = 0x811c9dc5; // FNV-1a
  for (let i = from; i < end; i++) {
    const b = buf[i] as number;
    if (b >= 0x80) return undefined;
    h = Math.imul(h ^ b, 0x01000193);
  }
  const hit = interned.get(h);
  if (hit !== undefined && hit.length === len) {
    let i = 0;
    while (i < len && hit.charCodeAt(i) === buf[from + i]) i++;
    if (i === len) return hit;
  }
  const s = utf8Decoder.decode(buf.subarray(from, end));
  if (interned.size >= INTERN_MAX_ENTRIES) interned.clear();
  interned.set(h, s);
  return s;
}

/** Largest value a zigzag varint may carry so that its encoding stays a safe integer. */
export const MAX_ZIGZAG_MAGNITUDE = 2 ** 52 - 1;

/** Appends bytes to a buffer that doubles as needed. */
export class ByteWriter {
  // Protected: the ClickHouse RowBinary writer (core/clickhouse/row-binary.ts) adds fixed-width fields.
  protected buf: Uint8Array;
  protected view: DataView;
  protected pos = 0;

  constructor(initialCapacity = 256) {
    this.buf = new Uint8Array(initialCapacity);
    this.view = new DataView(this.buf.buffer);
  }

  protected ensure(extra: number): void {
    const needed = this.pos + extra;
    if (needed <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < needed) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Unsigned LEB128 of a safe non-negative integer. */
  uvarint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`uvarint: expected a safe non-negative integer, got ${n}`);
    this.ensure(8);
    // Division instead of >>> because values may exceed 32 bits.
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }

  /** Zigzag-encoded signed integer, |n| ≤ MAX_ZIGZAG_MAGNITUDE. */
  svarint(n: number): void {
    if (!Number.isSafeInteger(n) || Math.abs(n) > MAX_ZIGZAG_MAGNITUDE) {
      throw new RangeError(`svarint: expected an integer with |n| ≤ 2^52 − 1, got ${n}`);
    }
    this.uvarint(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  float64(x: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, x, true);
    this.pos += 8;
  }

  /** Byte length (uvarint) then UTF-8; lone surrogates become U+FFFD, as TextEncoder does. */
  string(s: string): void {
    // Short ASCII (names, sites, countries, paths): copied code unit by code unit, which is
    // cheaper than a TextEncoder call per string; the length fits one varint byte.
    const n = s.length;
    if (n < 0x80) {
      this.ensure(n + 1);
      const start = this.pos + 1;
      let i = 0;
      while (i < n) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        this.buf[start + i++] = c;
      }
      if (i === n) {
        this.buf[this.pos] = n;
        this.pos = start + n;
        return;
      }
    }
    // encodeInto straight into the buffer avoids one copy per string.
    const maxBytes = s.length * 3;
    this.ensure(maxBytes + 8);
    const lenPos = this.pos;
    const lenBytes = uvarintSize(maxBytes);
    const { written } = utf8Encoder.encodeInto(s, this.buf.subarray(lenPos + lenBytes));
    const actual = uvarintSize(written);
    if (actual !== lenBytes) this.buf.copyWithin(lenPos + actual, lenPos + lenBytes, lenPos + lenBytes + written);
    this.uvarint(written);
    this.pos = lenPos + actual + written;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** Bytes a uvarint of `n` takes. */
export function uvarintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

/** Why a read failed; the codec turns it into a DecodeError. */
export class ReadFailure {
  constructor(
    readonly code: 'truncated' | 'malformed',
    readonly message: string,
    readonly offset: number,
  ) {}
}

/** Reads from a byte array; every read checks bounds and throws a {@link ReadFailure}. */
export class ByteReader {
  pos = 0;
  private readonly buf: Uint8Array;
  private readonly view: DataView;

  constructor(input: Uint8Array) {
    // A Node Buffer (what Kafka hands over) is read through a plain Uint8Array view: its
    // subarray() builds a Buffer through JS and its slice() does not copy.
    this.buf = input.constructor === Uint8Array ? input : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    this.view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  fail(code: 'truncated' | 'malformed', message: string, offset = this.pos): never {
    throw new ReadFailure(code, message, offset);
  }

  /** Fails as truncated unless `n` more bytes are there. */
  need(n: number, what: string): void {
    if (n > this.remaining) this.fail('truncated', `${what}: needs ${n} bytes, ${this.remaining} left`);
  }

  byte(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++] as number;
  }

  /** The next byte, for a caller that has already checked {@link need}. */
  byteUnchecked(): number {
    return this.buf[this.pos++] as number;
  }

  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Canonical unsigned LEB128 of at most 53 bits; overlong or larger encodings are malformed. */
  uvarint(what: string): number {
    // Most varints on the wire (string refs, counts, gaps) are one byte.
    const first = this.buf[this.pos];
    if (first !== undefined && first < 0x80) {
      this.pos++;
      return first;
    }
    return this.uvarintMultiByte(what);
  }

  private uvarintMultiByte(what: string): number {
    const start = this.pos;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.buf.length) this.fail('truncated', `${what}: varint runs past the end`, start);
      const b = this.buf[this.pos++] as number;
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) this.fail('malformed', `${what}: overlong varint`, start);
        if (value > Number.MAX_SAFE_INTEGER) this.fail('malformed', `${what}: varint exceeds 2^53 − 1`, start);
        return value;
      }
      scale *= 0x80;
    }
    return this.fail('malformed', `${what}: varint longer than 8 bytes`, start);
  }

  svarint(what: string): number {
    const z = this.uvarint(what);
    // z ≤ 2^53 − 1, so both branches are exact.
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  /** A count of items, each at least `minItemBytes` long: rejects counts the input cannot hold. */
  count(what: string, minItemBytes = 1): number {
    const start = this.pos;
    const n = this.uvarint(what);
    if (n * minItemBytes > this.remaining) this.fail('truncated', `${what}: ${n} items cannot fit in ${this.remaining} bytes`, start);
    return n;
  }

  float64(what: string): number {
    this.need(8, what);
    const x = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return x;
  }

  string(what: string): string {
    const start = this.pos;
    const len = this.uvarint(what);
    if (len <= INTERN_MAX_BYTES && len <= this.remaining) {
      const s = internedAscii(this.buf, this.pos, len);
      if (s !== undefined) {
        this.pos += len;
        return s;
      }
    }
    const raw = this.bytes(len, what);
    try {
      return utf8Decoder.decode(raw);
    } catch {
      return this.fail('malformed', `${what}: invalid UTF-8`, start);
    }
  }
}
