import { ByteWriter } from '../../shared/algebra/bytes.ts';

/**
 * Rows in ClickHouse's RowBinary format: each value in its column's binary layout, no
 * separators. The aggregator writes its tables this way because ClickHouse reads it several
 * times faster than JSON (docs/BENCHMARKS.md "Aggregator"). Strings and lengths are the
 * envelope codec's: uvarint length + UTF-8 (ClickHouse's VarUInt is LEB128 too).
 *
 * @example
 * const w = new RowBinaryWriter();
 * w.string('site-1'); w.dateTime64Ms(Date.UTC(2026, 0, 1)); w.uint64(3);
 * await clickhouse.insertRowBinary({ table: 't', columns: [['site', 'String'], ['t', "DateTime64(3, 'UTC')"], ['n', 'UInt64']], rows: w.finish() });
 */
export class RowBinaryWriter extends ByteWriter {
  uint8(n: number): void {
    this.ensure(1);
    this.buf[this.pos++] = n;
  }

  uint16(n: number): void {
    this.ensure(2);
    this.view.setUint16(this.pos, n, true);
    this.pos += 2;
  }

  uint32(n: number): void {
    this.ensure(4);
    this.view.setUint32(this.pos, n, true);
    this.pos += 4;
  }

  int32(n: number): void {
    this.ensure(4);
    this.view.setInt32(this.pos, n, true);
    this.pos += 4;
  }

  /** UInt64 from a safe non-negative integer (counts never reach 2^53). */
  uint64(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`uint64: expected a safe non-negative integer, got ${n}`);
    this.ensure(8);
    // Two 32-bit halves: no BigInt allocation per value.
    this.view.setUint32(this.pos, n % 0x1_0000_0000, true);
    this.view.setUint32(this.pos + 4, Math.floor(n / 0x1_0000_0000), true);
    this.pos += 8;
  }

  /** Int64 from a safe integer. */
  int64(n: number): void {
    if (n >= 0) return this.uint64(n);
    if (!Number.isSafeInteger(n)) throw new RangeError(`int64: expected a safe integer, got ${n}`);
    this.ensure(8);
    this.view.setBigInt64(this.pos, BigInt(n), true);
    this.pos += 8;
  }

  /** DateTime64(3): milliseconds since the epoch as Int64. */
  dateTime64Ms(ms: number): void {
    this.int64(ms);
  }

  nullableFloat64(x: number | undefined): void {
    if (x === undefined) return this.uint8(1);
    this.uint8(0);
    this.float64(x);
  }

  nullableDateTime64Ms(ms: number | undefined): void {
    if (ms === undefined) return this.uint8(1);
    this.uint8(0);
    this.int64(ms);
  }

  /** Map(String, String) from pairs. */
  stringMap(pairs: ReadonlyArray<readonly [string, string]>): void {
    this.uvarint(pairs.length);
    for (const [k, v] of pairs) {
      this.string(k);
      this.string(v);
    }
  }

  arrayUInt8(xs: readonly number[]): void {
    this.uvarint(xs.length);
    this.ensure(xs.length);
    for (const x of xs) this.buf[this.pos++] = x;
  }

  arrayUInt16(xs: readonly number[]): void {
    this.uvarint(xs.length);
    for (const x of xs) this.uint16(x);
  }

  arrayInt32(xs: readonly number[]): void {
    this.uvarint(xs.length);
    for (const x of xs) this.int32(x);
  }

  arrayUInt64(xs: readonly number[]): void {
    this.uvarint(xs.length);
    for (const x of xs) this.uint64(x);
  }
}
