import { serve } from '@hono/node-server';
import { Kafka, logLevel } from 'kafkajs';
import type { AddressInfo } from 'node:net';
import { startAggregator, type RunningAggregator } from './aggregator/kafka-runner.ts';
import { openClickHouse, type ClickHouse } from './clickhouse/client.ts';
import { createEmissionWriter } from './clickhouse/emission-writer.ts';
import { migrate } from './clickhouse/migrate.ts';
import type { CoreConfig } from './config/core-config.ts';
import type { Env } from './config/env.ts';
import { ensureTopics } from './kafka/topics.ts';
import type { Logger } from './log.ts';
import { createQueryApp } from './query/api.ts';
import { parseEdgeConfig } from '../edge/config.ts';
import { startNodeEdge } from '../edge/node/server.ts';

export interface Pipeline {
  edgeUrl: string;
  queryUrl: string;
  brokers: string[];
  clickhouse: ClickHouse;
  aggregator: RunningAggregator;
  stop(): Promise<void>;
}

/** Kafka client for the core processes; kafkajs' own logs go through our structured logger. */
export function createKafka(brokers: string[], clientId: string, logger: Logger): Kafka {
  return new Kafka({
    clientId,
    brokers,
    logLevel: logLevel.WARN,
    logCreator: () => ({ level, log }) => {
      const fields = { event: 'kafka_client', kafka_logger: log.logger, message: log.message };
      if (level <= logLevel.ERROR) logger.error(fields);
      else logger.warn(fields);
    },
  });
}

export async function ensurePipelineTopics(kafka: Kafka, config: CoreConfig): Promise<void> {
  await ensureTopics(kafka, [
    { topic: config.topics.partials, numPartitions: 4 },
    { topic: config.topics.rejected, numPartitions: 1 },
    { topic: config.topics.deadLetter, numPartitions: 1 },
  ]);
}

/**
 * The composition root of `tributary start`: one ClickHouse client, one Kafka client, the Node
 * edge, the aggregator and the query API, in one process.
 */
export async function startPipeline(config: CoreConfig, edgeEnv: Env, brokers: string[], logger: Logger): Promise<Pipeline> {
  const edgeConfig = parseEdgeConfig(edgeEnv);
  if (!edgeConfig.ok) throw new Error(`edge configuration is not valid:\n  - ${edgeConfig.errors.join('\n  - ')}`);

  const clickhouse = await openClickHouse(config.clickhouse);
  const report = await migrate(clickhouse.client);
  logger.info({ event: 'migrations_checked', applied: report.applied, clickhouse: clickhouse.description });

  const kafka = createKafka(brokers, 'tributary', logger);
  await ensurePipelineTopics(kafka, config);

  const aggregator = await startAggregator({
    kafka,
    topic: config.topics.partials,
    groupId: config.aggregator.groupId,
    deadLetterTopic: config.topics.deadLetter,
    writer: createEmissionWriter(clickhouse.client),
    settings: config.aggregator,
    emitIntervalMs: config.aggregator.emitIntervalMs,
    logger: logger.child({ component: 'aggregator' }),
  });

  const edge = await startNodeEdge({
    config: edgeConfig.config,
    brokers,
    port: config.edgePort,
    topics: { partials: config.topics.partials, rejected: config.topics.rejected },
  });

  const queryApp = createQueryApp(clickhouse.client);
  const queryServer = serve({ fetch: queryApp.fetch, port: config.queryPort, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => queryServer.once('listening', () => resolve()));
  const queryPort = (queryServer.address() as AddressInfo).port;

  return {
    edgeUrl: edge.url,
    queryUrl: `http://127.0.0.1:${queryPort}`,
    brokers,
    clickhouse,
    aggregator,
    async stop() {
      await edge.close();
      await aggregator.stop();
      await new Promise<void>((resolve) => queryServer.close(() => resolve()));
      await clickhouse.close();
    },
  };
}
