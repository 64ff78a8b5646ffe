/**
 * Child process of the golden suite: `aggregate` runs N aggregators on one chdb directory until
 * SIGTERM (or SIGKILL), printing progress lines; `dump` prints a run's results and the oracle.
 * The parent test never opens chdb itself: libchdb binds one data directory per process.
 */
import { readFileSync } from 'node:fs';
import { openClickHouse } from '../../../core/clickhouse/client.ts';
import { migrate } from '../../../core/clickhouse/migrate.ts';
import { parseCoreConfig } from '../../../core/config/core-config.ts';
import { silentLogger } from '../../../core/log.ts';
import { startConfiguredAggregator } from '../../../core/aggregator/from-config.ts';
import { createKafka } from '../../../core/kafka/client.ts';
import type { RawEvent } from './stream.ts';

const mode = process.argv[2];
const parsed = parseCoreConfig(process.env);
if (!parsed.ok) {
  console.error(parsed.errors.join('\n'));
  process.exit(2);
}
const config = parsed.config;
const clickhouse = await openClickHouse(config.clickhouse);
await migrate(clickhouse.client);

if (mode === 'aggregate') {
  const instances = Number(process.env.GOLDEN_INSTANCES ?? '1');
  const logger = silentLogger();
  const kafka = createKafka(config.kafkaBrokers ?? [], 'golden-child', logger);
  const aggregators = await Promise.all(Array.from({ length: instances }, () => startConfiguredAggregator(kafka, clickhouse, config, logger)));
  const timer = setInterval(() => {
    const partitions = aggregators.flatMap((a) => a.partitions());
    console.log(JSON.stringify({ event: 'progress', partitions, stats: aggregators.map((a) => a.stats()) }));
  }, Number(process.env.GOLDEN_PROGRESS_MS ?? '200'));
  process.once('SIGTERM', () => {
    clearInterval(timer);
    void Promise.all(aggregators.map((a) => a.stop()))
      .then(() => clickhouse.close())
      .then(() => process.exit(0));
  });
} else if (mode === 'dump') {
  const raw = JSON.parse(readFileSync(process.env.GOLDEN_RAW ?? '', 'utf8')) as RawEvent[];
  const c = clickhouse.client;
  await c.command({ query: `CREATE TABLE IF NOT EXISTS raw_events (site String, event String, window_start_ms Int64, dims_key String, user String, value UInt32) ENGINE = MergeTree ORDER BY tuple()` });
  await c.command({ query: 'TRUNCATE TABLE raw_events' });
  await c.insert({ table: 'raw_events', values: raw, format: 'JSONEachRow' });
  const q = async <T>(query: string): Promise<T[]> => (await c.query({ query, format: 'JSONEachRow' })).json<T>();
  const cells = await q(`
    SELECT site, event, toUnixTimestamp64Milli(window_start) AS w, dims_key,
           toUInt64(sum(events)) AS events, toUInt64(sum(value_count)) AS value_count, sum(value_sum) AS value_sum,
           min(value_min) AS value_min, max(value_max) AS value_max,
           maxMap(users_hll) AS regs, sumMap(value_sketch) AS bins,
           tributary_hll_estimate(maxMap(users_hll)) AS uniques
    FROM agg_minute GROUP BY site, event, w, dims_key ORDER BY site, event, w, dims_key`);
  const hours = await q(`
    SELECT site, event, toUnixTimestamp64Milli(window_start) AS w, toUInt64(sum(events)) AS events
    FROM agg_hour GROUP BY site, event, w ORDER BY site, event, w`);
  const late = await q(`
    SELECT site, event, toUnixTimestamp64Milli(window_start) AS w, dims_key, source_id, sequence, toUInt64(events) AS events, reason
    FROM late_partials ORDER BY site, event, w, dims_key, source_id, sequence`);
  const statuses = await q(`
    SELECT toUnixTimestamp64Milli(window_start) AS w, partition, argMax(status, version) AS status
    FROM window_status GROUP BY w, partition ORDER BY w, partition`);
  const oracle = await q(`
    SELECT site, event, window_start_ms AS w, dims_key, count() AS events, uniqExact(user) AS users, sum(value) AS value_sum
    FROM raw_events GROUP BY site, event, w, dims_key ORDER BY site, event, w, dims_key`);
  console.log(`GOLDEN_DUMP ${JSON.stringify({ cells, hours, late, statuses, oracle })}`);
  await clickhouse.close();
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
