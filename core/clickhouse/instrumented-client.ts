import type { ClickHouseClient } from '@clickhouse/client';
import type { AggregatorMetrics } from '../metrics.ts';

/**
 * The same client, with every `insert` timed into `tributary_clickhouse_insert_duration_seconds`
 * by table. A wrapper rather than code in each writer: the emission writer, the checkpoint store
 * and anything added later are measured the same way without knowing about metrics.
 *
 * @example
 * const writer = createEmissionWriter(withInsertMetrics(clickhouse.client, aggregatorMetrics));
 */
export function withInsertMetrics(client: ClickHouseClient, metrics: Pick<AggregatorMetrics, 'insertLatency'>): ClickHouseClient {
  const insert: ClickHouseClient['insert'] = async (params) => {
    const started = performance.now();
    try {
      return await client.insert(params);
    } finally {
      metrics.insertLatency(params.table, (performance.now() - started) / 1000);
    }
  };
  return new Proxy(client, {
    get(target, prop) {
      if (prop === 'insert') return insert;
      const value: unknown = Reflect.get(target, prop, target);
      // Methods run on the real client: it keeps private state a proxy receiver cannot reach.
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
