import type { Kafka } from 'kafkajs';
import type { ClickHouse } from '../clickhouse/client.ts';
import { createClickHouseCheckpointStore } from '../clickhouse/checkpoint-store.ts';
import { createEmissionWriter } from '../clickhouse/emission-writer.ts';
import type { CoreConfig } from '../config/core-config.ts';
import type { Logger } from '../log.ts';
import type { Registry } from 'prom-client';
import { withInsertMetrics } from '../clickhouse/instrumented-client.ts';
import { createAggregatorMetrics } from '../metrics.ts';
import { aggregatorMetricsHooks } from '../metrics-hooks.ts';
import { startAggregator, type RunningAggregator } from './kafka-runner.ts';

/**
 * An aggregator wired from configuration: the one way the CLI, `start` and tests build it.
 * With a registry, its Prometheus series (lag, watermark delay, insert latency...) are recorded.
 */
export function startConfiguredAggregator(kafka: Kafka, clickhouse: ClickHouse, config: CoreConfig, logger: Logger, registry?: Registry): Promise<RunningAggregator> {
  const metrics = registry ? createAggregatorMetrics(registry) : undefined;
  const instrumented = metrics ? withInsertMetrics(clickhouse, metrics) : clickhouse;
  const writer = createEmissionWriter(instrumented);
  return startAggregator({
    kafka,
    topic: config.topics.partials,
    groupId: config.aggregator.groupId,
    deadLetterTopic: config.topics.deadLetter,
    writer,
    checkpoints: createClickHouseCheckpointStore(instrumented, writer),
    settings: config.aggregator,
    emitIntervalMs: config.aggregator.emitIntervalMs,
    emitMaxRows: config.aggregator.emitMaxRows,
    catchUpEmitMaxMs: config.aggregator.catchUpEmitMaxMs,
    sessionTimeoutMs: config.aggregator.sessionTimeoutMs,
    maxBytesPerPartition: config.aggregator.maxBytesPerPartition,
    logger,
    ...(metrics ? { hooks: aggregatorMetricsHooks(metrics) } : {}),
  });
}
