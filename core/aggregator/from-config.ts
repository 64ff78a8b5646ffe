import type { Kafka } from 'kafkajs';
import type { ClickHouse } from '../clickhouse/client.ts';
import { createClickHouseCheckpointStore } from '../clickhouse/checkpoint-store.ts';
import { createEmissionWriter } from '../clickhouse/emission-writer.ts';
import type { CoreConfig } from '../config/core-config.ts';
import type { Logger } from '../log.ts';
import { startAggregator, type AggregatorHooks, type RunningAggregator } from './kafka-runner.ts';

/** An aggregator wired from configuration: the one way the CLI, `start` and tests build it. */
export function startConfiguredAggregator(kafka: Kafka, clickhouse: ClickHouse, config: CoreConfig, logger: Logger, hooks?: AggregatorHooks): Promise<RunningAggregator> {
  return startAggregator({
    kafka,
    topic: config.topics.partials,
    groupId: config.aggregator.groupId,
    deadLetterTopic: config.topics.deadLetter,
    writer: createEmissionWriter(clickhouse.client),
    checkpoints: createClickHouseCheckpointStore(clickhouse.client),
    settings: config.aggregator,
    emitIntervalMs: config.aggregator.emitIntervalMs,
    sessionTimeoutMs: config.aggregator.sessionTimeoutMs,
    maxBytesPerPartition: config.aggregator.maxBytesPerPartition,
    logger,
    ...(hooks ? { hooks } : {}),
  });
}
