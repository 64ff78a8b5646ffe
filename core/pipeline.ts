import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { RunningAggregator } from './aggregator/kafka-runner.ts';
import { startConfiguredAggregator } from './aggregator/from-config.ts';
import { startInBackground, type BackgroundComponent, type ComponentHealth } from './background.ts';
import { startConfiguredRejectedSink, type RunningRejectedSink } from './rejected/rejected-sink.ts';
import { createKafka } from './kafka/client.ts';
import { untrackedSteps, type CloseSteps } from './shutdown.ts';
import { openClickHouse, type ClickHouse } from './clickhouse/client.ts';
import { migrate } from './clickhouse/migrate.ts';
import { applyRetention, describeRetention } from './clickhouse/retention.ts';
import type { CoreConfig } from './config/core-config.ts';
import type { Env } from './config/env.ts';
import { ensurePipelineTopics } from './kafka/topics.ts';
import { structuredEdgeLog, type Logger } from './log.ts';
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
  /** Joins its consumer group in the background: see {@link PipelineHealth}. */
  aggregator: BackgroundComponent<RunningAggregator>;
  rejectedSink: BackgroundComponent<RunningRejectedSink>;
  /** The process's Prometheus registry, served at the query API's GET /metrics. */
  metrics: Registry;
  /** What the edge's and the query API's `/health` report about the consumers. */
  health(): PipelineHealth;
  /** Settles when a consumer of the pipeline stopped on a fatal error (never otherwise). */
  fatal: Promise<{ component: 'aggregator' | 'rejected_sink'; error: Error }>;
  /** Closes the edge first (no new acknowledgements), then the consumers, the query API, ClickHouse. */
  stop(steps?: CloseSteps): Promise<void>;
}

export type PipelineHealth = Record<'aggregator' | 'rejected_sink', ComponentHealth>;

/**
 * The composition root of `tributary start`: one ClickHouse client, one Kafka client, the Node
 * edge, the aggregator and the query API, in one process.
 *
 * Start-up order: ClickHouse and its migrations, the topics, then the edge and the query API;
 * the aggregator and the rejected-events sink start last and join their consumer groups in the
 * background. Ingest never waits for them: after a crash the group join waits out the dead
 * member's session timeout (30 s by default), while the edge only needs Kafka to acknowledge
 * (ADR 0011). Their state is in `health()` and on both `/health` endpoints.
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

  const kafka = createKafka(brokers, 'tributary', logger, { security: config.kafkaSecurity });
  await ensurePipelineTopics(kafka, config);

  // Filled once the edge and the query API are up; until then both report `joining`.
  const consumers: { aggregator?: BackgroundComponent<RunningAggregator>; rejectedSink?: BackgroundComponent<RunningRejectedSink> } = {};
  const health = (): PipelineHealth => ({
    aggregator: consumers.aggregator?.health() ?? { status: 'joining' },
    rejected_sink: consumers.rejectedSink?.health() ?? { status: 'joining' },
  });

  const saltProvider =
    config.saltSource === 'clickhouse'
      ? createClickHouseSaltProvider({ client: clickhouse.client, epochMs: edgeConfig.config.saltEpochMs, retentionEpochs: edgeConfig.config.saltRetentionEpochs, now: Date.now })
      : undefined;
  const edge = await startNodeEdge({
    config: edgeConfig.config,
    ...(saltProvider ? { saltProvider } : {}),
    brokers,
    ...(config.kafkaSecurity ? { kafkaSecurity: config.kafkaSecurity } : {}),
    port: config.edgePort,
    topics: { partials: config.topics.partials, rejected: config.topics.rejected, partialsRouting: config.topics.partialsRouting },
    log: structuredEdgeLog(logger.child({ component: 'edge' })),
    components: health,
  });

  const queryApp = createQueryApp(clickhouse.client, {
    access,
    limits: config.queryLimits,
    metricsToken: config.metricsToken,
    registry: metrics,
    allowedLatenessMs: config.aggregator.allowedLatenessMs,
    logger: logger.child({ component: 'query_api' }),
    health,
  });
  const queryServer = serve({ fetch: queryApp.fetch, port: config.queryPort, hostname: config.queryHost });
  await new Promise<void>((resolve) => queryServer.once('listening', () => resolve()));
  const queryPort = (queryServer.address() as AddressInfo).port;

  const aggregator = startInBackground<RunningAggregator>({
    starting: startConfiguredAggregator(kafka, clickhouse, config, logger.child({ component: 'aggregator' }), metrics),
    health: (a) => a.health(),
    fatal: (a) => a.fatal,
  });
  const rejectedSink = startInBackground<RunningRejectedSink>({
    starting: startConfiguredRejectedSink(kafka, clickhouse, config, logger.child({ component: 'rejected_sink' }), metrics),
    health: (r) => r.health(),
    fatal: (r) => r.fatal,
  });
  consumers.aggregator = aggregator;
  consumers.rejectedSink = rejectedSink;
  const fatal = Promise.race([
    aggregator.fatal.then((error) => ({ component: 'aggregator' as const, error })),
    rejectedSink.fatal.then((error) => ({ component: 'rejected_sink' as const, error })),
  ]);

  return {
    edgeUrl: edge.url,
    queryUrl: `http://${urlHostOf(config.queryHost)}:${queryPort}`,
    brokers,
    clickhouse,
    aggregator,
    rejectedSink,
    metrics,
    health,
    fatal,
    async stop(steps = untrackedSteps) {
      await steps.run('edge', () => edge.close());
      await Promise.all([steps.run('aggregator', () => aggregator.stop()), steps.run('rejected_sink', () => rejectedSink.stop())]);
      await steps.run('query_api', () => new Promise<void>((resolve) => queryServer.close(() => resolve())));
      await steps.run('clickhouse', () => clickhouse.close());
    },
  };
}
