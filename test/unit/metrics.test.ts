import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { aggregatorMetricsHooks } from '../../core/metrics-hooks.ts';
import { createAggregatorMetrics, createHttpMetrics, createMetricsRegistry, httpMetricsMiddleware } from '../../core/metrics.ts';

describe('createAggregatorMetrics', () => {
  it('registers every aggregator series and scrapes what was observed', async () => {
    let now = 1_800_000_100_000;
    const registry = createMetricsRegistry({ processMetrics: false });
    const m = createAggregatorMetrics(registry, { now: () => now });
    m.consumerLag(0, 42);
    m.consumerLag(3, 7);
    m.watermark(0, 1_800_000_000_000);
    m.openWindows(0, 5);
    m.rowsEmitted('agg_minute', 120);
    m.rowsEmitted('agg_minute', 30);
    m.rowsEmitted('window_status', 4);
    m.lateRows('beyond_correction_horizon', 3);
    m.duplicates('sequence_already_seen');
    m.deadLettered('undecodable_envelope', 2);
    m.checkpointDuration(0.012);
    m.insertLatency('agg_minute', 0.004);
    m.writeFailure('emission');

    const text = await registry.metrics();
    expect(text).toContain('tributary_aggregator_consumer_lag_messages{partition="0"} 42');
    expect(text).toContain('tributary_aggregator_consumer_lag_messages{partition="3"} 7');
    expect(text).toContain('tributary_aggregator_watermark_delay_seconds{partition="0"} 100');
    expect(text).toContain('tributary_aggregator_watermark_timestamp_seconds{partition="0"} 1800000000');
    expect(text).toContain('tributary_aggregator_open_windows{partition="0"} 5');
    expect(text).toContain('tributary_aggregator_rows_emitted_total{table="agg_minute"} 150');
    expect(text).toContain('tributary_aggregator_rows_emitted_total{table="window_status"} 4');
    expect(text).toContain('tributary_aggregator_late_rows_total{reason="beyond_correction_horizon"} 3');
    expect(text).toContain('tributary_aggregator_duplicates_total{reason="sequence_already_seen"} 1');
    expect(text).toContain('tributary_aggregator_dead_lettered_total{reason="undecodable_envelope"} 2');
    expect(text).toContain('tributary_aggregator_checkpoint_duration_seconds_count 1');
    expect(text).toContain('tributary_aggregator_checkpoint_duration_seconds_bucket{le="0.025"} 1');
    expect(text).toContain('tributary_aggregator_checkpoint_duration_seconds_bucket{le="0.01"} 0');
    expect(text).toContain('tributary_clickhouse_insert_duration_seconds_count{table="agg_minute"} 1');
    expect(text).toContain('tributary_aggregator_write_failures_total{stage="emission"} 1');

    // The delay is computed when scraped: a watermark that stops moving shows a growing delay.
    now += 30_000;
    expect(await registry.metrics()).toContain('tributary_aggregator_watermark_delay_seconds{partition="0"} 130');
  });

  it('forgets a partition it no longer owns, and a partition without a watermark has no delay', async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const m = createAggregatorMetrics(registry, { now: () => 10_000 });
    m.consumerLag(1, 3);
    m.openWindows(1, 2);
    m.watermark(1, 5_000);
    m.watermark(2, 5_000);
    m.watermark(2, undefined);
    m.forgetPartition(1);
    const text = await registry.metrics();
    expect(text).not.toMatch(/partition="1"/);
    expect(text).not.toMatch(/watermark_delay_seconds\{partition="2"\}/);
  });

  it('ignores values that are not finite counts instead of throwing in the consumer loop', async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const m = createAggregatorMetrics(registry);
    expect(() => {
      m.rowsEmitted('agg_minute', Number.NaN);
      m.lateRows('x', -1);
      m.checkpointDuration(Number.POSITIVE_INFINITY);
      m.consumerLag(0, Number.NaN);
    }).not.toThrow();
    expect(await registry.metrics()).not.toContain('tributary_aggregator_rows_emitted_total{');
  });

  it('keeps registries apart: two aggregators in one process, one registry each', async () => {
    const a = createMetricsRegistry({ processMetrics: false });
    const b = createMetricsRegistry({ processMetrics: false });
    createAggregatorMetrics(a).rowsEmitted('agg_minute', 1);
    createAggregatorMetrics(b);
    expect(await a.metrics()).toContain('tributary_aggregator_rows_emitted_total{table="agg_minute"} 1');
    expect(await b.metrics()).not.toContain('tributary_aggregator_rows_emitted_total{table="agg_minute"}');
  });
});

describe('createMetricsRegistry', () => {
  it('adds Node process metrics under the tributary_ prefix and default labels to every series', async () => {
    const registry = createMetricsRegistry({ defaultLabels: { role: 'aggregator' } });
    const text = await registry.metrics();
    expect(text).toMatch(/tributary_process_cpu_seconds_total\{role="aggregator"\}/);
    expect(text).toMatch(/tributary_nodejs_eventloop_lag_seconds\{role="aggregator"\}/);
    expect(registry.contentType).toMatch(/^text\/plain/);
  });
});

describe('httpMetricsMiddleware', () => {
  it('counts requests by route pattern, not by raw path, and times them', async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const app = new Hono();
    app.use('*', httpMetricsMiddleware(createHttpMetrics(registry, 'edge')));
    app.get('/v1/items/:id', (c) => c.json({ id: c.req.param('id') }));
    app.get('/boom', () => {
      throw new Error('boom');
    });
    app.onError((_err, c) => c.json({ error: 'x' }, 500));
    await app.request('/v1/items/1');
    await app.request('/v1/items/2');
    await app.request('/nope');
    await app.request('/boom');
    const text = await registry.metrics();
    expect(text).toContain('tributary_http_requests_total{service="edge",method="GET",route="/v1/items/:id",status="200"} 2');
    expect(text).toContain('tributary_http_requests_total{service="edge",method="GET",route="/*",status="404"} 1');
    expect(text).toContain('tributary_http_requests_total{service="edge",method="GET",route="/boom",status="500"} 1');
    expect(text).toContain('tributary_http_request_duration_seconds_count{service="edge",method="GET",route="/v1/items/:id"} 2');
  });

  it('lets two services share one registry', async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    createHttpMetrics(registry, 'edge').observe({ method: 'POST', route: '/v1/batch', status: 200, seconds: 0.01 });
    createHttpMetrics(registry, 'query_api').observe({ method: 'GET', route: '/api/v1/totals', status: 400, seconds: 0.001 });
    const text = await registry.metrics();
    expect(text).toContain('service="edge"');
    expect(text).toContain('service="query_api"');
  });
});

describe('aggregatorMetricsHooks', () => {
  it('turns the aggregator hooks into the series, lag from the last high watermark and the last confirmed commit', async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const hooks = aggregatorMetricsHooks(createAggregatorMetrics(registry, { now: () => 61_000 }));
    hooks.messageDecoded?.(0, 'ok');
    hooks.messageDecoded?.(0, 'duplicate');
    hooks.messageDecoded?.(0, 'dead_lettered');
    hooks.lateRows?.(0, 2);
    const bytes = new Uint8Array(0);
    hooks.emissionWritten?.(0, { parts: [{ table: 'agg_minute', rows: 3, bytes }, { table: 'window_status', rows: 1, bytes }, { table: 'partition_progress', rows: 1, bytes }] }, 12);
    hooks.checkpointed?.(0, 30);
    hooks.writeFailed?.(0, 'checkpoint');
    hooks.partitionState?.(0, { watermarkMs: 1000, openWindows: 4 });
    hooks.offsets?.(0, { highWatermark: '120', committed: '100' });
    hooks.offsets?.(0, { committed: '110' });
    hooks.partitionState?.(0, { watermarkMs: 1000, openWindows: 3 });
    const text = await registry.metrics();
    expect(text).toContain('tributary_aggregator_duplicates_total{reason="sequence_already_seen"} 1');
    expect(text).toContain('tributary_aggregator_dead_lettered_total{reason="undecodable_envelope"} 1');
    expect(text).toContain('tributary_aggregator_late_rows_total{reason="beyond_correction_horizon"} 2');
    expect(text).toContain('tributary_aggregator_rows_emitted_total{table="agg_minute"} 3');
    expect(text).toContain('tributary_aggregator_rows_emitted_total{table="window_status"} 1');
    expect(text).toContain('tributary_aggregator_checkpoint_duration_seconds_sum 0.03');
    expect(text).toContain('tributary_aggregator_write_failures_total{stage="checkpoint"} 1');
    expect(text).toContain('tributary_aggregator_consumer_lag_messages{partition="0"} 10');
    expect(text).toContain('tributary_aggregator_open_windows{partition="0"} 3');
    expect(text).toContain('tributary_aggregator_watermark_delay_seconds{partition="0"} 60');
  });

  it('lag grows with the high watermark while no commit is confirmed (a partition blocked on failing writes)', async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const hooks = aggregatorMetricsHooks(createAggregatorMetrics(registry));
    const lag = async (): Promise<string | undefined> => /tributary_aggregator_consumer_lag_messages\{partition="2"\} (\d+)/.exec(await registry.metrics())?.[1];
    hooks.offsets?.(2, { highWatermark: '500', committed: '500' });
    expect(await lag()).toBe('0');
    // The consumer fetched on (or the high-watermark poll saw more input), nothing was committed.
    hooks.offsets?.(2, { highWatermark: '616' });
    expect(await lag()).toBe('116');
    hooks.offsets?.(2, { highWatermark: '700' });
    expect(await lag()).toBe('200');
    hooks.offsets?.(2, { committed: '690' });
    expect(await lag()).toBe('10');
  });
});
