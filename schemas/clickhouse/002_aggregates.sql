-- Window aggregates written by the aggregator as additive deltas (ADR 0003).
-- Every measure column is a SimpleAggregateFunction, so inserting a delta row and merging rows
-- (by the engine, by GROUP BY, or by the rollup views) are the same operation.
-- dims_key is the canonical "name=value\x1f..." form of dims and part of the sorting key, so rows
-- of different dimension values never merge.
CREATE TABLE IF NOT EXISTS agg_minute (
  site LowCardinality(String),
  event LowCardinality(String),
  window_start DateTime64(3, 'UTC'),
  dims_key String,
  dims SimpleAggregateFunction(any, Map(String, String)),
  events SimpleAggregateFunction(sum, UInt64),
  value_count SimpleAggregateFunction(sum, UInt64),
  value_sum SimpleAggregateFunction(sum, Float64),
  value_min SimpleAggregateFunction(min, Nullable(Float64)),
  value_max SimpleAggregateFunction(max, Nullable(Float64)),
  users_hll SimpleAggregateFunction(maxMap, Tuple(Array(UInt16), Array(UInt8))),
  value_sketch SimpleAggregateFunction(sumMap, Tuple(Array(Int32), Array(UInt64)))
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (site, event, window_start, dims_key)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS agg_hour AS agg_minute
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (site, event, window_start, dims_key)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS agg_day AS agg_minute
ENGINE = AggregatingMergeTree
PARTITION BY toYear(window_start)
ORDER BY (site, event, window_start, dims_key)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS agg_hour_mv TO agg_hour AS
SELECT site, event, toStartOfHour(window_start) AS window_start, dims_key, dims, events, value_count,
  value_sum, value_min, value_max, users_hll, value_sketch
FROM agg_minute;

CREATE MATERIALIZED VIEW IF NOT EXISTS agg_day_mv TO agg_day AS
SELECT site, event, toStartOfDay(window_start) AS window_start, dims_key, dims, events, value_count,
  value_sum, value_min, value_max, users_hll, value_sketch
FROM agg_minute;

-- One row per (window, aggregator partition) and emission epoch; the newest version wins.
CREATE TABLE IF NOT EXISTS window_status (
  window_start DateTime64(3, 'UTC'),
  window_size_ms UInt32,
  partition UInt16,
  status Enum8('provisional' = 1, 'final' = 2, 'corrected' = 3),
  watermark Nullable(DateTime64(3, 'UTC')),
  finalized_at Nullable(DateTime64(3, 'UTC')),
  updated_at DateTime64(3, 'UTC'),
  version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (window_start, partition)
SETTINGS non_replicated_deduplication_window = 10000;

-- Partials that arrived after their window's correction horizon: kept with the reason, never dropped.
CREATE TABLE IF NOT EXISTS late_partials (
  site LowCardinality(String),
  event LowCardinality(String),
  window_start DateTime64(3, 'UTC'),
  dims_key String,
  events UInt64,
  reason LowCardinality(String),
  source_id String,
  sequence UInt64,
  watermark Nullable(DateTime64(3, 'UTC')),
  received_at DateTime64(3, 'UTC')
) ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (site, window_start)
SETTINGS non_replicated_deduplication_window = 10000;
