import { hllToRegisters, sketchToBins } from '../../shared/algebra/index.ts';
import type { EncodedEmission, Emission } from '../aggregator/emission.ts';
import type { ClickHouse } from './client.ts';
import { RowBinaryWriter } from './row-binary.ts';
import type { RowBinaryInsert } from './row-binary-insert.ts';

export interface EmissionWriter {
  /** The epoch's inserts, encoded once at the cut: what the checkpoint keeps and the write sends. */
  encode(emission: Emission, partition: number, nowMs: number): EncodedEmission;
  /**
   * Writes one epoch's inserts in order. `token` must be deterministic for the epoch: a retry or a
   * re-send after a crash with the same token is deduplicated by ClickHouse (ADR 0003), also in
   * the rollup materialized views.
   */
  writeEncoded(encoded: EncodedEmission, token: string): Promise<{ rows: number }>;
  /** `encode` then `writeEncoded`, for callers that keep no checkpoint (tests, seeding). */
  write(emission: Emission, token: string, partition: number): Promise<{ rows: number }>;
}

const TIME = "DateTime64(3, 'UTC')";
const NULLABLE_TIME = `Nullable(${TIME})`;
type Columns = RowBinaryInsert['columns'];

// Encoded types (core/clickhouse/row-binary.ts); the tables are in schemas/clickhouse/002 and 005.
const DELTA_COLUMNS: Columns = [
  ['site', 'String'], ['event', 'String'], ['window_start', TIME], ['dims_key', 'String'], ['dims', 'Map(String, String)'],
  ['events', 'UInt64'], ['value_count', 'UInt64'], ['value_sum', 'Float64'], ['value_min', 'Nullable(Float64)'], ['value_max', 'Nullable(Float64)'],
  ['users_hll', 'Tuple(Array(UInt16), Array(UInt8))'], ['value_sketch', 'Tuple(Array(Int32), Array(UInt64))'],
];
// status as String: ClickHouse converts it to the Enum8 by name.
const STATUS_COLUMNS: Columns = [
  ['window_start', TIME], ['window_size_ms', 'UInt32'], ['partition', 'UInt16'], ['status', 'String'],
  ['watermark', NULLABLE_TIME], ['finalized_at', NULLABLE_TIME], ['updated_at', TIME], ['version', 'UInt64'],
];
const PROGRESS_COLUMNS: Columns = [['partition', 'UInt16'], ['watermark', TIME], ['updated_at', TIME], ['version', 'UInt64']];
const LATE_COLUMNS: Columns = [
  ['site', 'String'], ['event', 'String'], ['window_start', TIME], ['dims_key', 'String'], ['events', 'UInt64'], ['reason', 'String'],
  ['source_id', 'String'], ['sequence', 'UInt64'], ['watermark', NULLABLE_TIME], ['received_at', TIME],
];

// dims_key and dims are adjacent in a row and repeat across cells and epochs: their bytes are
// encoded once per dimension tuple. The aggregator shares one read-only dims array per tuple
// (DeltaRow.dims), which keys this cache and lets it go with the tuple.
const dimsBytes = new WeakMap<ReadonlyArray<readonly [string, string]>, Uint8Array>();

function dimsColumns(dimsKey: string, dims: ReadonlyArray<readonly [string, string]>): Uint8Array {
  let bytes = dimsBytes.get(dims);
  if (bytes === undefined) {
    const w = new RowBinaryWriter(64);
    w.string(dimsKey);
    w.stringMap(dims);
    dimsBytes.set(dims, (bytes = w.finish()));
  }
  return bytes;
}

function encodeDeltas(emission: Emission): Uint8Array {
  const w = new RowBinaryWriter(emission.deltas.length * 128);
  for (const d of emission.deltas) {
    const regs = hllToRegisters(d.partial.users);
    const bins = sketchToBins(d.partial.values);
    const hasValues = d.partial.valueCount > 0;
    w.string(d.site);
    w.string(d.event);
    w.dateTime64Ms(d.windowStartMs);
    w.bytes(dimsColumns(d.dimsKey, d.dims));
    w.uint64(d.partial.count);
    w.uint64(d.partial.valueCount);
    w.float64(d.partial.sum);
    w.nullableFloat64(hasValues ? d.partial.min : undefined);
    w.nullableFloat64(hasValues ? d.partial.max : undefined);
    w.arrayUInt16(regs.index);
    w.arrayUInt8(regs.rank);
    w.arrayInt32(bins.key);
    w.arrayUInt64(bins.count);
  }
  return w.finish();
}

const COLUMNS_OF = new Map<string, Columns>([
  ['agg_minute', DELTA_COLUMNS],
  ['late_partials', LATE_COLUMNS],
  ['window_status', STATUS_COLUMNS],
  ['partition_progress', PROGRESS_COLUMNS],
]);

function encodeLate(emission: Emission): Uint8Array {
  const w = new RowBinaryWriter();
  for (const l of emission.late) {
    w.string(l.site);
    w.string(l.event);
    w.dateTime64Ms(l.windowStartMs);
    w.string(l.dimsKey);
    w.uint64(l.events);
    w.string(l.reason);
    w.string(l.sourceId);
    w.uint64(l.sequence);
    w.nullableDateTime64Ms(l.watermarkMs);
    w.dateTime64Ms(l.receivedAtMs);
  }
  return w.finish();
}

function encodeStatuses(emission: Emission, partition: number, nowMs: number): Uint8Array {
  const w = new RowBinaryWriter();
  for (const s of emission.statuses) {
    w.dateTime64Ms(s.windowStartMs);
    w.uint32(s.windowSizeMs);
    w.uint16(partition);
    w.string(s.status);
    w.nullableDateTime64Ms(s.watermarkMs);
    w.nullableDateTime64Ms(s.finalizedAtMs);
    w.dateTime64Ms(nowMs);
    w.uint64(nowMs);
  }
  return w.finish();
}

function encodeProgress(progressMs: number, partition: number, nowMs: number): Uint8Array {
  const w = new RowBinaryWriter(32);
  w.uint16(partition);
  w.dateTime64Ms(progressMs);
  w.dateTime64Ms(nowMs);
  w.uint64(nowMs);
  return w.finish();
}

export function createEmissionWriter(clickhouse: Pick<ClickHouse, 'insertRowBinary'>): EmissionWriter {
  const encode: EmissionWriter['encode'] = (emission, partition, nowMs) => {
    // Parts are written in this order. Deltas first: a status never claims a window final before its numbers are written.
    const parts: EncodedEmission['parts'] = [];
    if (emission.deltas.length > 0) parts.push({ table: 'agg_minute', rows: emission.deltas.length, bytes: encodeDeltas(emission) });
    if (emission.late.length > 0) parts.push({ table: 'late_partials', rows: emission.late.length, bytes: encodeLate(emission) });
    if (emission.statuses.length > 0) parts.push({ table: 'window_status', rows: emission.statuses.length, bytes: encodeStatuses(emission, partition, nowMs) });
    if (emission.progressMs !== undefined) parts.push({ table: 'partition_progress', rows: 1, bytes: encodeProgress(emission.progressMs, partition, nowMs) });
    return { parts };
  };

  const writeEncoded: EmissionWriter['writeEncoded'] = async (encoded, token) => {
    let rows = 0;
    for (const part of encoded.parts) {
      const columns = COLUMNS_OF.get(part.table);
      if (columns === undefined) throw new Error(`emission part for unknown table ${JSON.stringify(part.table)}: not written by this version's encoder`);
      await clickhouse.insertRowBinary({
        table: part.table,
        columns,
        rows: part.bytes,
        settings: {
          insert_deduplication_token: `${token}:${part.table}`,
          deduplicate_blocks_in_dependent_materialized_views: 1,
          // One epoch is one block, so a whole emission is deduplicated or inserted as a unit:
          // blocks read from the file are squashed by rows only, up to far more than an epoch holds.
          max_insert_block_size: '10000000',
          min_insert_block_size_rows: '10000000',
          min_insert_block_size_bytes: '0',
          // Rows of equal key are merged by queries (GROUP BY) and background merges anyway;
          // merging them inside each insert block as well (maxMap/sumMap over the sketches, in
          // agg_minute and again in both rollup views) more than doubled the insert's cost
          // (docs/BENCHMARKS.md "Aggregator").
          optimize_on_insert: 0,
        },
      });
      rows += part.rows;
    }
    return { rows };
  };

  return {
    encode,
    writeEncoded,
    write: (emission, token, partition) => writeEncoded(encode(emission, partition, Date.now()), token),
  };
}
