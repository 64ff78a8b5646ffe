import { hash64 } from './hash.ts';
import type { PartialEnvelope, PartialRow } from './envelope-codec.ts';

/**
 * Joins a source id and its shard: `edge-fra-1#3` carries the cells of `edge-fra-1` that belong
 * to partition 3. The aggregator deduplicates and tracks watermarks per sub-source, exactly as
 * it does per source.
 */
const SUB_SOURCE_SEPARATOR = '#';

/**
 * The edge source a sub-source belongs to (`edge-fra-1#3` → `edge-fra-1`); a source id without
 * a shard is returned as it is. For grouping by edge, e.g. `late_partials.source_id`.
 */
export function sourceOfSubSource(sourceId: string): string {
  const at = sourceId.lastIndexOf(SUB_SOURCE_SEPARATOR);
  return at > 0 && /^\d+$/.test(sourceId.slice(at + 1)) ? sourceId.slice(0, at) : sourceId;
}

/**
 * The partition a cell belongs to: a hash of (site, event, dimensions), so every edge sends a
 * given cell to the same partition and one aggregator merges all of its partials. The window
 * is left out on purpose: a cell's successive minutes meet in one epoch, so the hour and day
 * rollups merge them in the insert block too.
 */
export function cellPartition(row: PartialRow, partitions: number): number {
  let key = `${row.site}\u001f${row.event}`;
  for (const [name, value] of row.dimensions) key += `\u001f${name}=${value}`;
  return hash64(key).lo % partitions;
}

/**
 * Splits one envelope into one per partition, index = partition (docs/adr/0008). Every part
 * keeps the sequence and watermark of the whole, also when it holds no rows: each partition
 * must see every source's watermark advance, or its windows would wait for the idle timeout.
 * A resend of the same envelope splits into the same parts, so the aggregator's
 * (sub-source, sequence) deduplication makes retries harmless.
 */
export function splitEnvelopeByCell(envelope: PartialEnvelope, partitions: number): PartialEnvelope[] {
  if (!Number.isInteger(partitions) || partitions < 1) throw new RangeError(`splitEnvelopeByCell: partitions must be a positive integer, got ${partitions}`);
  const rows: PartialRow[][] = Array.from({ length: partitions }, () => []);
  for (const row of envelope.rows) (rows[cellPartition(row, partitions)] as PartialRow[]).push(row);
  return rows.map((part, k) => ({ ...envelope, sourceId: `${envelope.sourceId}${SUB_SOURCE_SEPARATOR}${k}`, rows: part }));
}
