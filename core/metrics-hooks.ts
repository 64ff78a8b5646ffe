import type { AggregatorHooks } from './aggregator/kafka-runner.ts';
import type { AggregatorMetrics, EmittedTable } from './metrics.ts';

/** Tables whose written rows `tributary_aggregator_rows_emitted_total` counts (partition_progress is bookkeeping). */
const EMITTED_TABLES: ReadonlySet<string> = new Set<EmittedTable>(['agg_minute', 'window_status', 'late_partials']);

/**
 * The aggregator's observation hooks feeding `AggregatorMetrics`, so the consumer loop knows
 * nothing about Prometheus. Insert latency comes from `withInsertMetrics` on the client.
 *
 * @example
 * const metrics = createAggregatorMetrics(registry);
 * startAggregator({ ...options, writer: createEmissionWriter(withInsertMetrics(clickhouse, metrics)), hooks: aggregatorMetricsHooks(metrics) });
 */
export function aggregatorMetricsHooks(metrics: AggregatorMetrics): AggregatorHooks {
  // Lag is the partition's high watermark − its last CONFIRMED committed offset, recomputed whenever
  // either moves: it grows while the partition is blocked on failing writes (nothing commits) even
  // though the consumer has fetched further.
  const highWatermarks = new Map<number, bigint>();
  const committed = new Map<number, bigint>();
  const offset = (s: string | undefined): bigint | undefined => (s !== undefined && /^\d+$/.test(s) ? BigInt(s) : undefined);
  return {
    messageDecoded(_partition, result) {
      if (result === 'duplicate') metrics.duplicates('sequence_already_seen');
      else if (result === 'dead_lettered') metrics.deadLettered('undecodable_envelope');
    },
    lateRows(_partition, count) {
      metrics.lateRows('beyond_correction_horizon', count);
    },
    emissionWritten(_partition, emission) {
      for (const part of emission.parts) if (EMITTED_TABLES.has(part.table)) metrics.rowsEmitted(part.table as EmittedTable, part.rows);
    },
    checkpointed(_partition, durationMs) {
      metrics.checkpointDuration(durationMs / 1000);
    },
    writeFailed(_partition, stage) {
      metrics.writeFailure(stage);
    },
    partitionState(partition, state) {
      metrics.watermark(partition, state.watermarkMs);
      metrics.openWindows(partition, state.openWindows);
    },
    offsets(partition, positions) {
      const high = offset(positions.highWatermark);
      const done = offset(positions.committed);
      if (high !== undefined) highWatermarks.set(partition, high);
      if (done !== undefined) committed.set(partition, done);
      const h = highWatermarks.get(partition);
      const c = committed.get(partition);
      if (h !== undefined && c !== undefined) metrics.consumerLag(partition, Number(h > c ? h - c : 0n));
    },
  };
}
