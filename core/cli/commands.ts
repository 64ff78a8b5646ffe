import { serve } from '@hono/node-server';
import { openClickHouse } from '../clickhouse/client.ts';
import { migrate } from '../clickhouse/migrate.ts';
import { applyRetention, describeRetention } from '../clickhouse/retention.ts';
import type { CoreConfig } from '../config/core-config.ts';
import { startLocalKafka } from '../kafka/local-broker.ts';
import type { Logger } from '../log.ts';
import { startConfiguredAggregator } from '../aggregator/from-config.ts';
import { createKafka } from '../kafka/client.ts';
import { ensurePipelineTopics } from '../kafka/topics.ts';
import { startPipeline } from '../pipeline.ts';
import { createMetricsRegistry } from '../metrics.ts';
import { serveMetrics } from '../metrics-server.ts';
import { createQueryApp } from '../query/api.ts';
import { startGateway } from '../gateway/server.ts';
import { parseEdgeConfig } from '../../edge/config.ts';
import { startNodeEdge } from '../../edge/node/server.ts';

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
}

function requireBrokers(config: CoreConfig): string[] {
  if (!config.kafkaBrokers) throw new Error('KAFKA_BROKERS is not set: point it at your brokers (host:port,...) or run `tributary start`, which starts a local broker');
  return config.kafkaBrokers;
}

export async function runStart(config: CoreConfig, logger: Logger): Promise<number> {
  let brokers = config.kafkaBrokers;
  if (!brokers) {
    console.log('Starting local Kafka (first run downloads the broker jars with Maven)...');
    const kafka = await startLocalKafka({ onEvent: (event, fields) => logger.info({ event, ...fields }) });
    brokers = [kafka.brokers];
    console.log(kafka.alreadyRunning ? `Using local Kafka at ${kafka.brokers}` : `Local Kafka started at ${kafka.brokers} in ${kafka.startupMs} ms (stop it with: npx tributary kafka stop)`);
  }
  // `start` is the local development pipeline: demo write key and dev salt unless configured.
  const pipeline = await startPipeline(config, { TRIBUTARY_ENV: 'dev', ...process.env }, brokers, logger);
  const site = 'demo';
  console.log(`
Tributary is running.
  ClickHouse : ${pipeline.clickhouse.description}
  Kafka      : ${brokers.join(',')}
  Edge       : ${pipeline.edgeUrl}
  Query API  : ${pipeline.queryUrl}

Send an event (write key wk_demo -> site "${site}"):
  curl -s -u wk_demo: -H 'content-type: application/json' ${pipeline.edgeUrl}/v1/track \\
    -d '{"event":"signup","userId":"u1","properties":{"value":3}}'

Read results (windows become final ${Math.round((config.aggregator.windowSizeMs + config.aggregator.allowedLatenessMs) / 1000)} s after they start, plus the edge watermark delay):
  curl -s '${pipeline.queryUrl}/api/v1/timeseries?site=${site}&granularity=minute'
  curl -s '${pipeline.queryUrl}/api/v1/totals?site=${site}'

Press Ctrl-C to stop.`);
  const signal = await waitForSignal();
  logger.info({ event: 'shutdown_requested', signal });
  await pipeline.stop();
  return 0;
}

export async function runEdge(config: CoreConfig, logger: Logger): Promise<number> {
  const brokers = requireBrokers(config);
  const edgeConfig = parseEdgeConfig(process.env);
  if (!edgeConfig.ok) throw new Error(`edge configuration is not valid:\n  - ${edgeConfig.errors.join('\n  - ')}`);
  const edge = await startNodeEdge({ config: edgeConfig.config, brokers, port: config.edgePort, topics: { partials: config.topics.partials, rejected: config.topics.rejected } });
  logger.info({ event: 'edge_listening', url: edge.url });
  await waitForSignal();
  await edge.close();
  return 0;
}

/** `tributary gateway`: signed HTTPS in, idempotent Kafka producer out (docs/DEPLOY-WORKERS.md). */
export async function runGateway(config: CoreConfig, logger: Logger): Promise<number> {
  const brokers = requireBrokers(config);
  if (config.gateway.signingKeys.size === 0) throw new Error('GATEWAY_SIGNING_KEYS is not set: list each edge as edgeId:secret (the edge has the same secret as GATEWAY_SIGNING_KEY)');
  await ensurePipelineTopics(createKafka(brokers, 'tributary-gateway-admin', logger), config);
  const gateway = await startGateway({ brokers, keys: config.gateway.signingKeys, port: config.gateway.port, topics: { partials: config.topics.partials, rejected: config.topics.rejected }, logger });
  logger.info({ event: 'gateway_listening', url: gateway.url });
  await waitForSignal();
  await gateway.close();
  return 0;
}

export async function runAggregator(config: CoreConfig, logger: Logger): Promise<number> {
  const brokers = requireBrokers(config);
  const clickhouse = await openClickHouse(config.clickhouse);
  await migrate(clickhouse.client);
  const kafka = createKafka(brokers, 'tributary-aggregator', logger);
  await ensurePipelineTopics(kafka, config);
  const registry = createMetricsRegistry();
  const aggregator = await startConfiguredAggregator(kafka, clickhouse, config, logger, registry);
  const metrics = await serveMetrics(registry, config.metricsPort);
  logger.info({ event: 'aggregator_started', clickhouse: clickhouse.description, metrics: metrics.url });
  await waitForSignal();
  await aggregator.stop();
  await metrics.close();
  await clickhouse.close();
  return 0;
}

export async function runQueryApi(config: CoreConfig, logger: Logger): Promise<number> {
  const clickhouse = await openClickHouse(config.clickhouse);
  const app = createQueryApp(clickhouse.client, { registry: createMetricsRegistry(), allowedLatenessMs: config.aggregator.allowedLatenessMs, logger });
  const server = serve({ fetch: app.fetch, port: config.queryPort });
  logger.info({ event: 'query_api_listening', port: config.queryPort });
  await waitForSignal();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await clickhouse.close();
  return 0;
}

export async function runMigrate(config: CoreConfig): Promise<number> {
  const clickhouse = await openClickHouse(config.clickhouse);
  try {
    const report = await migrate(clickhouse.client);
    console.log(`ClickHouse (${clickhouse.description}): applied ${report.applied.length} migration(s)${report.applied.length ? `: ${report.applied.join(', ')}` : ''}; ${report.alreadyApplied.length} already applied`);
    // Retention is configuration, not schema: a separate step after the migrations (ADR 0005).
    console.log(`Retention: ${describeRetention(await applyRetention(clickhouse.client, config.retention))}`);
    return 0;
  } finally {
    await clickhouse.close();
  }
}
