import type { ClickHouseClient } from '@clickhouse/client';
import type { AggregatorMetrics } from '../metrics.ts';
import type { ClickHouse } from './client.ts';
import type { InsertRowBinary } from './row-binary-insert.ts';

/**
 * The same ClickHouse, with every insert (`client.insert` and `insertRowBinary`) timed into
 * `tributary_clickhouse_insert_duration_seconds` by table. A wrapper rather than code in each
 * writer: the emission writer, the checkpoint store and anything added later are measured the
 * same way without knowing about metrics.
 *
 * @example
 * const writer = createEmissionWriter(withInsertMetrics(clickhouse, aggregatorMetrics));
 */
export function withInsertMetrics(clickhouse: ClickHouse, metrics: Pick<AggregatorMetrics, 'insertLatency'>): ClickHouse {
  async function timed<T>(table: string, run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await run();
    } finally {
      metrics.insertLatency(table, (performance.now() - started) / 1000);
    }
  }
  const insert: ClickHouseClient['insert'] = (params) => timed(params.table, () => clickhouse.client.insert(params));
  const insertRowBinary: InsertRowBinary = (params) => timed(params.table, () => clickhouse.insertRowBinary(params));
  const client = new Proxy(clickhouse.client, {
    get(target, prop) {
      if (prop === 'insert') return insert;
      const value: unknown = Reflect.get(target, prop, target);
      // Methods run on the real client: it keeps private state a proxy receiver cannot reach.
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { ...clickhouse, client, insertRowBinary };
}
