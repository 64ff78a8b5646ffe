import type { AggregatorHooks } from './aggregator/kafka-runner.ts';
import type { AggregatorMetrics } from './metrics.ts';

/**
 * The aggregator's observation hooks feeding `AggregatorMetrics`, so the consumer loop knows
 * nothing about Prometheus. Insert latency comes from `withInsertMetrics` on the client.
 *
 * @example
 * const metrics = createAggregatorMetrics(registry);
 * startAggregator({ ...options, writer: createEmissionWriter(withInsertMetrics(client, metrics)), hooks: aggregatorMetricsHooks(metrics) });
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
      metrics.rowsEmitted('agg_minute', emission.deltas.length);
      metrics.rowsEmitted('window_status', emission.statuses.length);
      metrics.rowsEmitted('late_partials', emission.late.length);
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
