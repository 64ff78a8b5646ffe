import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// Prometheus metrics of the core processes. Every factory registers into a registry it is given
// (never prom-client's global one), so one process can host several components, and tests can
// build as many as they like. docs/OPERATIONS.md lists every series with its meaning.

export interface MetricsRegistryOptions {
  /** Node process metrics (CPU, memory, event-loop lag, GC) as `tributary_process_*`, `tributary_nodejs_*`. Default true. */
  processMetrics?: boolean;
  /** Labels added to every series, e.g. `{ instance_role: 'aggregator' }`. */
  defaultLabels?: Record<string, string>;
}

/**
 * A fresh registry for one process; serve it with `registry.metrics()` and `registry.contentType`.
 *
 * @example
 * const registry = createMetricsRegistry();
 * const aggregatorMetrics = createAggregatorMetrics(registry);
 * const app = createQueryApp(client, { registry });
 */
export function createMetricsRegistry(options: MetricsRegistryOptions = {}): Registry {
  const registry = new Registry();
  if (options.defaultLabels) registry.setDefaultLabels(options.defaultLabels);
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'tributary_' });
  return registry;
}

/** Tables the aggregator writes, as the `table` label of emitted-row and insert-latency series. */
export type EmittedTable = 'agg_minute' | 'window_status' | 'late_partials' | 'aggregator_checkpoints';

/** Where a write failed, as the `stage` label of `tributary_aggregator_write_failures_total`. */
export type WriteStage = 'emission' | 'checkpoint' | 'offset_commit' | 'dead_letter';

/**
 * What the aggregator reports. Calls are cheap and never throw, so the consumer loop can call
 * them inline. Reasons are short snake_case codes (`beyond_correction_horizon`,
 * `sequence_already_seen`, `undecodable_envelope`), the same words as in the logs.
 */
export interface AggregatorMetrics {
  /** Messages in the partition not yet durably consumed: its high watermark − its last confirmed committed offset. */
  consumerLag(partition: number, messages: number): void;
  /**
   * The partition's event-time watermark; undefined until its sources have reported. The delay
   * gauge is computed as now − watermark when scraped, so a stuck watermark shows as a
   * growing delay even if nobody calls this again.
   */
  watermark(partition: number, watermarkMs: number | undefined): void;
  /** Windows of the partition not yet final. */
  openWindows(partition: number, windows: number): void;
  rowsEmitted(table: EmittedTable, rows: number): void;
  lateRows(reason: string, rows: number): void;
  duplicates(reason: string, count?: number): void;
  deadLettered(reason: string, count?: number): void;
  /** Time to make one checkpoint durable (state + offsets), in seconds. */
  checkpointDuration(seconds: number): void;
  /** Time of one ClickHouse insert into `table`, in seconds (see `withInsertMetrics`). */
  insertLatency(table: string, seconds: number): void;
  writeFailure(stage: WriteStage): void;
  /** Drops the per-partition series of a partition this process no longer owns. */
  forgetPartition(partition: number): void;
}

/** Seconds from 1 ms to 30 s: inserts and checkpoints are usually milliseconds, retries take seconds. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The aggregator's series in `registry`.
 *
 * @example
 * const metrics = createAggregatorMetrics(registry);
 * metrics.rowsEmitted('agg_minute', emission.deltas.length);
 * metrics.watermark(partition, aggregator.watermark(Date.now()));
 */
export function createAggregatorMetrics(registry: Registry, options: { now?: () => number } = {}): AggregatorMetrics {
  const now = options.now ?? Date.now;
  const registers = [registry];
  const watermarks = new Map<string, number>();

  const lag = new Gauge({ name: 'tributary_aggregator_consumer_lag_messages', help: 'Messages in the partition not yet durably consumed (high watermark - last confirmed committed offset); grows while writes fail.', labelNames: ['partition'], registers });
  new Gauge({
    name: 'tributary_aggregator_watermark_delay_seconds',
    help: 'Event-time delay of the partition: now - watermark, computed at scrape time. Windows become final this long (plus the allowed lateness) after they end.',
    labelNames: ['partition'],
    registers,
    collect() {
      this.reset();
      const t = now();
      for (const [partition, wm] of watermarks) this.set({ partition }, Math.max(0, (t - wm) / 1000));
    },
  });
  new Gauge({
    name: 'tributary_aggregator_watermark_timestamp_seconds',
    help: 'The partition watermark as a Unix timestamp in seconds.',
    labelNames: ['partition'],
    registers,
    collect() {
      this.reset();
      for (const [partition, wm] of watermarks) this.set({ partition }, wm / 1000);
    },
  });
  const open = new Gauge({ name: 'tributary_aggregator_open_windows', help: 'Windows of the partition that are not final yet.', labelNames: ['partition'], registers });
  const emitted = new Counter({ name: 'tributary_aggregator_rows_emitted_total', help: 'Rows written to ClickHouse, by table.', labelNames: ['table'], registers });
  const late = new Counter({ name: 'tributary_aggregator_late_rows_total', help: 'Partial rows too late to correct their window, sent to late_partials, by reason.', labelNames: ['reason'], registers });
  const dup = new Counter({ name: 'tributary_aggregator_duplicates_total', help: 'Envelopes ignored as already merged, by reason.', labelNames: ['reason'], registers });
  const dlq = new Counter({ name: 'tributary_aggregator_dead_lettered_total', help: 'Messages sent to the dead-letter topic, by reason.', labelNames: ['reason'], registers });
  const checkpoint = new Histogram({ name: 'tributary_aggregator_checkpoint_duration_seconds', help: 'Time to make one checkpoint durable.', buckets: LATENCY_BUCKETS, registers });
  const insert = new Histogram({ name: 'tributary_clickhouse_insert_duration_seconds', help: 'Latency of one ClickHouse insert, by table.', labelNames: ['table'], buckets: LATENCY_BUCKETS, registers });
  const failures = new Counter({ name: 'tributary_aggregator_write_failures_total', help: 'Failed writes (each is retried; the partition pulls nothing meanwhile), by stage.', labelNames: ['stage'], registers });

  const finite = (n: number): boolean => Number.isFinite(n) && n >= 0;
  return {
    consumerLag(partition, messages) {
      if (finite(messages)) lag.set({ partition: String(partition) }, messages);
    },
    watermark(partition, watermarkMs) {
      if (watermarkMs === undefined || !Number.isFinite(watermarkMs)) watermarks.delete(String(partition));
      else watermarks.set(String(partition), watermarkMs);
    },
    openWindows(partition, windows) {
      if (finite(windows)) open.set({ partition: String(partition) }, windows);
    },
    rowsEmitted(table, rows) {
      if (finite(rows)) emitted.inc({ table }, rows);
    },
    lateRows(reason, rows) {
      if (finite(rows)) late.inc({ reason }, rows);
    },
    duplicates(reason, count = 1) {
      if (finite(count)) dup.inc({ reason }, count);
    },
    deadLettered(reason, count = 1) {
      if (finite(count)) dlq.inc({ reason }, count);
    },
    checkpointDuration(seconds) {
      if (finite(seconds)) checkpoint.observe(seconds);
    },
    insertLatency(table, seconds) {
      if (finite(seconds)) insert.observe({ table }, seconds);
    },
    writeFailure(stage) {
      failures.inc({ stage });
    },
    forgetPartition(partition) {
      const labels = { partition: String(partition) };
      watermarks.delete(labels.partition);
      lag.remove(labels);
      open.remove(labels);
    },
  };
}

/**
 * `tributary_rejected_events_total{site}`: events the edges refused (schema or field errors),
 * counted when the rejected-events sink has recorded them in ClickHouse.
 */
export function createRejectedMetrics(registry: Registry): { rejectedEvents(site: string, count: number): void } {
  const rejected = new Counter({ name: 'tributary_rejected_events_total', help: 'Events refused by the edges (schema or field errors), recorded in rejected_events, by site.', labelNames: ['site'], registers: [registry] });
  return {
    rejectedEvents(site, count) {
      if (Number.isFinite(count) && count >= 0) rejected.inc({ site }, count);
    },
  };
}

/** Request counts and latencies of one HTTP service (query API, gateway, Node edge). */
export interface HttpMetrics {
  observe(request: { method: string; route: string; status: number; seconds: number }): void;
}

/**
 * HTTP series labelled by `service`, method, route pattern (never the raw path, which would
 * make one series per URL) and status.
 */
export function createHttpMetrics(registry: Registry, service: string): HttpMetrics {
  const registers = [registry];
  const requests =
    (registry.getSingleMetric('tributary_http_requests_total') as Counter<'service' | 'method' | 'route' | 'status'> | undefined) ??
    new Counter({ name: 'tributary_http_requests_total', help: 'HTTP requests served, by service, method, route pattern and status.', labelNames: ['service', 'method', 'route', 'status'], registers });
  const duration =
    (registry.getSingleMetric('tributary_http_request_duration_seconds') as Histogram<'service' | 'method' | 'route'> | undefined) ??
    new Histogram({ name: 'tributary_http_request_duration_seconds', help: 'HTTP request latency, by service, method and route pattern.', labelNames: ['service', 'method', 'route'], buckets: LATENCY_BUCKETS, registers });
  return {
    observe({ method, route, status, seconds }) {
      requests.inc({ service, method, route, status: String(status) });
      if (Number.isFinite(seconds) && seconds >= 0) duration.observe({ service, method, route }, seconds);
    },
  };
}

/**
 * Hono middleware recording every request in `metrics`; the route label is the matched
 * pattern (`/api/v1/timeseries`), `/*` for unmatched paths.
 *
 * @example
 * app.use('*', httpMetricsMiddleware(createHttpMetrics(registry, 'query_api')));
 */
export function httpMetricsMiddleware(metrics: HttpMetrics): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    try {
      await next();
    } finally {
      metrics.observe({ method: c.req.method, route: routePath(c, -1), status: c.res.status, seconds: (performance.now() - started) / 1000 });
    }
  };
}
