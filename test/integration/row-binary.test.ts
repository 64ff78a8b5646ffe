import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { RowBinaryWriter } from '../../core/clickhouse/row-binary.ts';
import { openTestClickHouse } from './helpers/aggregator-harness.ts';

// The aggregator writes every table as RowBinary (core/clickhouse/row-binary.ts). A wrong byte
// layout would not fail loudly in every case (a shifted column can still parse), so each
// encoding is read back from the real engine and compared value by value.

let ch: ClickHouse;

beforeAll(async () => {
  ch = await openTestClickHouse('trib-rowbinary');
  await ch.client.command({
    query: `CREATE TABLE rb (
      s String, lc LowCardinality(String), t DateTime64(3, 'UTC'), nt Nullable(DateTime64(3, 'UTC')), m Map(String, String),
      u8 UInt8, u16 UInt16, u32 UInt32, i32 Int32, u64 UInt64, i64 Int64, f Nullable(Float64),
      hll SimpleAggregateFunction(maxMap, Tuple(Array(UInt16), Array(UInt8))), bins Tuple(Array(Int32), Array(UInt64)), e Enum8('a' = 1, 'b' = 2)
    ) ENGINE = MergeTree ORDER BY s SETTINGS non_replicated_deduplication_window = 100`,
  });
});
afterAll(async () => ch.close());

const COLUMNS = [
  ['s', 'String'], ['lc', 'String'], ['t', "DateTime64(3, 'UTC')"], ['nt', "Nullable(DateTime64(3, 'UTC'))"], ['m', 'Map(String, String)'],
  ['u8', 'UInt8'], ['u16', 'UInt16'], ['u32', 'UInt32'], ['i32', 'Int32'], ['u64', 'UInt64'], ['i64', 'Int64'], ['f', 'Nullable(Float64)'],
  ['hll', 'Tuple(Array(UInt16), Array(UInt8))'], ['bins', 'Tuple(Array(Int32), Array(UInt64))'], ['e', 'String'],
] as const;

interface Row {
  s: string; lc: string; t: number; nt: number | undefined; m: Array<[string, string]>; u8: number; u16: number; u32: number; i32: number;
  u64: number; i64: number; f: number | undefined; hll: [number[], number[]]; bins: [number[], number[]]; e: 'a' | 'b';
}

function encode(rows: Row[]): Uint8Array {
  const w = new RowBinaryWriter(16);
  for (const r of rows) {
    w.string(r.s); w.string(r.lc); w.dateTime64Ms(r.t); w.nullableDateTime64Ms(r.nt); w.stringMap(r.m);
    w.uint8(r.u8); w.uint16(r.u16); w.uint32(r.u32); w.int32(r.i32); w.uint64(r.u64); w.int64(r.i64); w.nullableFloat64(r.f);
    w.arrayUInt16(r.hll[0]); w.arrayUInt8(r.hll[1]); w.arrayInt32(r.bins[0]); w.arrayUInt64(r.bins[1]); w.string(r.e);
  }
  return w.finish();
}

describe('RowBinary inserts into the embedded engine', () => {
  it('round-trips every encoding the aggregator uses, edge values included', async () => {
    const rows: Row[] = [
      {
        s: 'a', lc: 'site-1', t: Date.UTC(2026, 0, 1, 12, 30, 15, 123), nt: undefined, m: [], u8: 0, u16: 0, u32: 0, i32: -2_147_483_648,
        u64: 0, i64: -1, f: undefined, hll: [[], []], bins: [[], []], e: 'a',
      },
      {
        // Non-ASCII and long strings (multi-byte varint lengths), values past 32 bits, a pre-1970 time.
        s: 'b', lc: 'ü€😀'.repeat(50), t: -86_400_000 + 7, nt: Date.UTC(2030, 5, 1), m: [['country', 'DE'], ['path', '/ä/'.repeat(60)]],
        u8: 255, u16: 65_535, u32: 4_294_967_295, i32: 2_147_483_647, u64: 2 ** 53 - 1, i64: -(2 ** 53 - 1), f: -0.125,
        hll: [[0, 16383], [1, 51]], bins: [[-1038, 0, 2000], [1, 2 ** 40, 3]], e: 'b',
      },
    ];
    await ch.insertRowBinary({ table: 'rb', columns: COLUMNS, rows: encode(rows) });
    const rs = await ch.client.query({
      query: `SELECT s, lc, toUnixTimestamp64Milli(t) AS t, toUnixTimestamp64Milli(nt) AS nt, m, u8, u16, u32, i32, toString(u64) AS u64, toString(i64) AS i64, f, hll, bins, e FROM rb ORDER BY s`,
      format: 'JSONEachRow',
      clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
    });
    const back = await rs.json<Record<string, unknown>>();
    expect(back).toEqual(rows.map((r) => ({
      s: r.s, lc: r.lc, t: r.t, nt: r.nt ?? null, m: Object.fromEntries(r.m), u8: r.u8, u16: r.u16, u32: r.u32, i32: r.i32,
      u64: String(r.u64), i64: String(r.i64), f: r.f ?? null, hll: r.hll, bins: r.bins, e: r.e,
    })));
  });

  it('deduplicates a repeated insert with the same token', async () => {
    const row: Row = { s: 'dedup', lc: 'x', t: 0, nt: undefined, m: [], u8: 1, u16: 1, u32: 1, i32: 1, u64: 1, i64: 1, f: 1, hll: [[1], [1]], bins: [[1], [1]], e: 'a' };
    for (let i = 0; i < 3; i++) {
      await ch.insertRowBinary({ table: 'rb', columns: COLUMNS, rows: encode([row]), settings: { insert_deduplication_token: 'same-epoch' } });
    }
    // Not deduplicated against the settings-free inserts above: only this token's repeats collapse.
    const rs = await ch.client.query({ query: `SELECT count() AS n FROM rb WHERE s = 'dedup'`, format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([{ n: 1 }]);
  });

  it('refuses a table or column name that is not a plain identifier instead of building SQL from it', async () => {
    await expect(ch.insertRowBinary({ table: 'rb; DROP TABLE rb', columns: [['s', 'String']], rows: new Uint8Array([0]) })).rejects.toThrow(/not a plain identifier/);
    await expect(ch.insertRowBinary({ table: 'rb', columns: [["s') --", 'String']], rows: new Uint8Array([0]) })).rejects.toThrow(/not a plain identifier/);
  });

  it('fails the insert when ClickHouse cannot parse the rows', async () => {
    await expect(ch.insertRowBinary({ table: 'rb', columns: [['s', 'String'], ['u64', 'UInt64']], rows: new Uint8Array([5, 0x61]) })).rejects.toThrow();
  });
});
