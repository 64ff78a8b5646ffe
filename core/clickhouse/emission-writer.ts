import type { ClickHouseClient } from '@clickhouse/client';
import { hllToRegisters, sketchToBins } from '../algebra/index.ts';
import type { Emission } from '../aggregator/emission.ts';
import { toClickHouseTime } from './datetime.ts';

export interface EmissionWriter {
  /**
   * Writes one epoch's emission. `token` must be deterministic for the epoch: a retry or a
   * re-send after a crash with the same token is deduplicated by ClickHouse (ADR 0003), also in
   * the rollup materialized views.
   */
  write(emission: Emission, token: string, partition: number): Promise<{ rows: number }>;
}

export function createEmissionWriter(client: ClickHouseClient): EmissionWriter {
  async function insert(table: string, values: object[], token: string): Promise<void> {
    if (values.length === 0) return;
    await client.insert({
      table,
      values,
      format: 'JSONEachRow',
      clickhouse_settings: {
        insert_deduplication_token: `${token}:${table}`,
        deduplicate_blocks_in_dependent_materialized_views: 1,
        // One epoch is one block, so a whole emission is deduplicated or inserted as a unit.
        max_insert_block_size: '10000000',
      },
    });
  }

  return {
    async write(emission, token, partition) {
      const now = Date.now();
      const deltas = emission.deltas.map((d) => {
        const regs = hllToRegisters(d.partial.users);
        const bins = sketchToBins(d.partial.values);
        const hasValues = d.partial.valueCount > 0;
        return {
          site: d.site,
          event: d.event,
          window_start: toClickHouseTime(d.windowStartMs),
          dims_key: d.dimsKey,
          dims: Object.fromEntries(d.dims),
          events: d.partial.count,
          value_count: d.partial.valueCount,
          value_sum: d.partial.sum,
          value_min: hasValues ? d.partial.min : null,
          value_max: hasValues ? d.partial.max : null,
          users_hll: [regs.index, regs.rank],
          value_sketch: [bins.key, bins.count],
        };
      });
      const statuses = emission.statuses.map((s) => ({
        window_start: toClickHouseTime(s.windowStartMs),
        window_size_ms: s.windowSizeMs,
        partition,
        status: s.status,
        watermark: s.watermarkMs === undefined ? null : toClickHouseTime(s.watermarkMs),
        finalized_at: s.finalizedAtMs === undefined ? null : toClickHouseTime(s.finalizedAtMs),
        updated_at: toClickHouseTime(now),
        version: now,
      }));
      const late = emission.late.map((l) => ({
        site: l.site,
        event: l.event,
        window_start: toClickHouseTime(l.windowStartMs),
        dims_key: l.dimsKey,
        events: l.events,
        reason: l.reason,
        source_id: l.sourceId,
        sequence: l.sequence,
        watermark: l.watermarkMs === undefined ? null : toClickHouseTime(l.watermarkMs),
        received_at: toClickHouseTime(l.receivedAtMs),
      }));
      // Deltas first: a status never claims a window final before its numbers are written.
      await insert('agg_minute', deltas, token);
      await insert('late_partials', late, token);
      await insert('window_status', statuses, token);
      return { rows: deltas.length + late.length + statuses.length };
    },
  };
}
