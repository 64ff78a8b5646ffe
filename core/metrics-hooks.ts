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
  // The high watermark arrives with fetched batches only; lag is recomputed on every state report.
  const highWatermarks = new Map<number, bigint>();
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
      if (state.highWatermark !== undefined && /^\d+$/.test(state.highWatermark)) highWatermarks.set(partition, BigInt(state.highWatermark));
      const high = highWatermarks.get(partition);
      if (high !== undefined && state.nextOffset !== undefined && /^\d+$/.test(state.nextOffset)) {
        const lag = high - BigInt(state.nextOffset);
        metrics.consumerLag(partition, Number(lag > 0n ? lag : 0n));
      }
    },
  };
}
