import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { RunningAggregator } from './aggregator/kafka-runner.ts';
import { startConfiguredAggregator } from './aggregator/from-config.ts';
import { startConfiguredRejectedSink } from './rejected/rejected-sink.ts';
import { createKafka } from './kafka/client.ts';
import { openClickHouse, type ClickHouse } from './clickhouse/client.ts';
import { migrate } from './clickhouse/migrate.ts';
import { applyRetention, describeRetention } from './clickhouse/retention.ts';
import type { CoreConfig } from './config/core-config.ts';
import type { Env } from './config/env.ts';
import { ensurePipelineTopics } from './kafka/topics.ts';
import type { Logger } from './log.ts';
import { createMetricsRegistry } from './metrics.ts';
import type { Registry } from 'prom-client';
import { createQueryApp } from './query/api.ts';
import { resolveQueryAccess } from './query/read-access.ts';
import { urlHostOf } from './listen-address.ts';
import { createClickHouseSaltProvider } from './salts/clickhouse-salt-provider.ts';
import { parseEdgeConfig } from '../edge/config.ts';
import { startNodeEdge } from '../edge/node/server.ts';

export interface Pipeline {
  edgeUrl: string;
  queryUrl: string;
  brokers: string[];
  clickhouse: ClickHouse;
  aggregator: RunningAggregator;
  /** The process's Prometheus registry, served at the query API's GET /metrics. */
  metrics: Registry;
  stop(): Promise<void>;
}

/**
 * The composition root of `tributary start`: one ClickHouse client, one Kafka client, the Node
 * edge, the aggregator and the query API, in one process.
 */
export async function startPipeline(config: CoreConfig, edgeEnv: Env, brokers: string[], logger: Logger): Promise<Pipeline> {
  if (config.saltSource === 'gateway') throw new Error('SALT_SOURCE=gateway is for edges that reach a separate `tributary gateway`; `tributary start` reads salts from its own ClickHouse: use clickhouse (the default) or static');
  const edgeConfig = parseEdgeConfig(edgeEnv, { pseudonymSaltRequired: config.saltSource === 'static' });
  if (!edgeConfig.ok) throw new Error(`edge configuration is not valid:\n  - ${edgeConfig.errors.join('\n  - ')}`);
  // Open without a key only in dev on loopback; otherwise QUERY_READ_KEYS (resolveQueryAccess throws with what to set).
  const access = resolveQueryAccess({ readKeys: config.queryReadKeys, host: config.queryHost, dev: edgeConfig.config.env === 'dev' });

  const clickhouse = await openClickHouse(config.clickhouse);
  const report = await migrate(clickhouse.client);
  logger.info({ event: 'migrations_checked', applied: report.applied, clickhouse: clickhouse.description });
  const retention = await applyRetention(clickhouse.client, config.retention);
  logger.info({ event: 'retention_applied', retention: describeRetention(retention), changed: retention.filter((r) => r.action !== 'unchanged').map((r) => r.table) });
  const metrics = createMetricsRegistry();

  const kafka = createKafka(brokers, 'tributary', logger);
  await ensurePipelineTopics(kafka, config);

  const aggregator = await startConfiguredAggregator(kafka, clickhouse, config, logger.child({ component: 'aggregator' }), metrics);
  const rejectedSink = await startConfiguredRejectedSink(kafka, clickhouse, config, logger.child({ component: 'rejected_sink' }), metrics);

  const saltProvider =
    config.saltSource === 'clickhouse'
      ? createClickHouseSaltProvider({ client: clickhouse.client, epochMs: edgeConfig.config.saltEpochMs, retentionEpochs: edgeConfig.config.saltRetentionEpochs, now: Date.now })
      : undefined;
  const edge = await startNodeEdge({
    config: edgeConfig.config,
    ...(saltProvider ? { saltProvider } : {}),
    brokers,
    port: config.edgePort,
    topics: { partials: config.topics.partials, rejected: config.topics.rejected, partialsRouting: config.topics.partialsRouting },
  });

  const queryApp = createQueryApp(clickhouse.client, {
    access,
    limits: config.queryLimits,
    metricsToken: config.metricsToken,
    registry: metrics,
    allowedLatenessMs: config.aggregator.allowedLatenessMs,
    logger: logger.child({ component: 'query_api' }),
  });
  const queryServer = serve({ fetch: queryApp.fetch, port: config.queryPort, hostname: config.queryHost });
  await new Promise<void>((resolve) => queryServer.once('listening', () => resolve()));
  const queryPort = (queryServer.address() as AddressInfo).port;

  return {
    edgeUrl: edge.url,
    queryUrl: `http://${urlHostOf(config.queryHost)}:${queryPort}`,
    brokers,
    clickhouse,
    aggregator,
    metrics,
    async stop() {
      await edge.close();
      await aggregator.stop();
      await rejectedSink.stop();
      await new Promise<void>((resolve) => queryServer.close(() => resolve()));
      await clickhouse.close();
    },
  };
}
