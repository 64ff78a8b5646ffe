/**
 * One start function per service, each taking what it depends on: `tributary start` composes
 * them in one process (core/pipeline.ts), the single-service commands (core/cli/commands.ts) each
 * run one. Lifecycle rules (ADR 0011): the edge and the query API are up before the aggregator and
 * the rejected-events sink join their consumer groups, which happens in the background; their
 * state is in `health()` and `fatal`; every `close`/`stop` takes the named steps of the shutdown
 * deadline (`SHUTDOWN_TIMEOUT_MS`).
 */
import { serve } from '@hono/node-server';
import type { Kafka } from 'kafkajs';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { RunningAggregator } from './aggregator/kafka-runner.ts';
import { startConfiguredAggregator } from './aggregator/from-config.ts';
import { startInBackground, type BackgroundComponent, type ComponentHealth } from './background.ts';
import { openClickHouse, type ClickHouse } from './clickhouse/client.ts';
import { migrate } from './clickhouse/migrate.ts';
import { applyRetention, describeRetention } from './clickhouse/retention.ts';
import type { CoreConfig } from './config/core-config.ts';
import { startGateway as startGatewayServer, type RunningGateway } from './gateway/server.ts';
import { createKafka } from './kafka/client.ts';
import { ensurePipelineTopics } from './kafka/topics.ts';
import { urlHostOf } from './listen-address.ts';
import { structuredEdgeLog, type Logger } from './log.ts';
import { createQueryApp } from './query/api.ts';
import type { QueryAccess } from './query/read-access.ts';
import { startConfiguredRejectedSink, type RunningRejectedSink } from './rejected/rejected-sink.ts';
import { untrackedSteps, type CloseSteps } from './shutdown.ts';
import type { EdgeConfig } from '../edge/config.ts';
import { startNodeEdge, type RunningNodeEdge } from '../edge/node/server.ts';
import { createScrubber } from '../shared/privacy/scrub.ts';
import type { SaltProvider } from '../shared/salts.ts';

/**
 * ClickHouse opened and migrated (`migrations_checked`); with `retention`, the retention TTLs of
 * the configuration applied too (`tributary start`; elsewhere that is `tributary migrate`'s step).
 */
export async function openMigratedClickHouse(config: CoreConfig, logger: Logger, o: { retention?: boolean } = {}): Promise<ClickHouse> {
  const clickhouse = await openClickHouse(config.clickhouse);
  const report = await migrate(clickhouse.client);
  logger.info({ event: 'migrations_checked', applied: report.applied, clickhouse: clickhouse.description });
  if (o.retention) {
    const retention = await applyRetention(clickhouse.client, config.retention);
    logger.info({ event: 'retention_applied', retention: describeRetention(retention), changed: retention.filter((r) => r.action !== 'unchanged').map((r) => r.table) });
  }
  return clickhouse;
}

/** A Kafka client with the configured TLS/SASL, once the pipeline topics exist (created when missing). */
export async function connectPipelineKafka(config: CoreConfig, brokers: string[], clientId: string, logger: Logger): Promise<Kafka> {
  const kafka = createKafka(brokers, clientId, logger, { security: config.kafkaSecurity });
  await ensurePipelineTopics(kafka, config);
  return kafka;
}

export interface EdgeDeps {
  config: CoreConfig;
  edge: EdgeConfig;
  brokers: string[];
  logger: Logger;
  /** Epoch salts; unset: derived from `PSEUDONYM_SALT` (SALT_SOURCE=static). */
  saltProvider?: SaltProvider;
  /** Components of the same process that the edge's `/health` reports (`tributary start`). */
  components?: () => Record<string, ComponentHealth>;
  /** `EDGE_PROCESSES` > 1: worker processes, each importing `setup` for what cannot cross a process boundary. */
  workers?: { processes: number; setup: string };
}

/** The Node edge on `EDGE_PORT`, producing to the pipeline topics with the configured Kafka TLS/SASL. */
export function startEdge(d: EdgeDeps): Promise<RunningNodeEdge> {
  return startNodeEdge({
    config: d.edge,
    brokers: d.brokers,
    ...(d.config.kafkaSecurity ? { kafkaSecurity: d.config.kafkaSecurity } : {}),
    port: d.config.edgePort,
    topics: { partials: d.config.topics.partials, rejected: d.config.topics.rejected, partialsRouting: d.config.topics.partialsRouting },
    ...(d.saltProvider ? { saltProvider: d.saltProvider } : {}),
    log: structuredEdgeLog(d.logger.child({ component: 'edge' })),
    ...(d.components ? { components: d.components } : {}),
    closeDeadlineMs: d.config.shutdownTimeoutMs,
    ...(d.workers ? { processes: d.workers.processes, workerSetup: d.workers.setup } : {}),
  });
}

export type ConsumerName = 'aggregator' | 'rejected_sink';
export type ConsumersHealth = Record<ConsumerName, ComponentHealth>;

export interface AggregatorDeps {
  kafka: Kafka;
  clickhouse: ClickHouse;
  config: CoreConfig;
  logger: Logger;
  metrics: Registry;
}

export interface RunningConsumers {
  aggregator: BackgroundComponent<RunningAggregator>;
  rejectedSink: BackgroundComponent<RunningRejectedSink>;
  health(): ConsumersHealth;
  /** Resolves once both have started; rejects with the first start error (`fatal` settles too). */
  started: Promise<void>;
  /** Settles when one of them failed to start or stopped on a fatal error (never otherwise). */
  fatal: Promise<{ component: ConsumerName; error: Error }>;
  /** Stops both (in parallel), waiting for a start still under way. */
  stop(steps?: CloseSteps): Promise<void>;
}

/**
 * The aggregator and the rejected-events sink, started in the background: this returns at once,
 * they join their consumer groups meanwhile (after a crash that waits out the dead member's
 * session timeout) and report `joining` until then (ADR 0011).
 */
export function startAggregator(d: AggregatorDeps): RunningConsumers {
  const aggregatorStarting = startConfiguredAggregator(d.kafka, d.clickhouse, d.config, d.logger.child({ component: 'aggregator' }), d.metrics);
  const sinkStarting = startConfiguredRejectedSink(d.kafka, d.clickhouse, d.config, d.logger.child({ component: 'rejected_sink' }), d.metrics);
  const aggregator = startInBackground<RunningAggregator>({ starting: aggregatorStarting, health: (a) => a.health(), fatal: (a) => a.fatal });
  const rejectedSink = startInBackground<RunningRejectedSink>({ starting: sinkStarting, health: (r) => r.health(), fatal: (r) => r.fatal });
  const started = Promise.all([aggregatorStarting, sinkStarting]).then(() => undefined);
  // A failed start is reported through `fatal`; a caller that does not wait for `started` must not see it unhandled.
  started.catch(() => undefined);
  return {
    aggregator,
    rejectedSink,
    health: () => ({ aggregator: aggregator.health(), rejected_sink: rejectedSink.health() }),
    started,
    fatal: Promise.race([
      aggregator.fatal.then((error) => ({ component: 'aggregator' as const, error })),
      rejectedSink.fatal.then((error) => ({ component: 'rejected_sink' as const, error })),
    ]),
    async stop(steps = untrackedSteps) {
      await Promise.all([steps.run('aggregator', () => aggregator.stop()), steps.run('rejected_sink', () => rejectedSink.stop())]);
    },
  };
}

export interface QueryApiDeps {
  clickhouse: ClickHouse;
  config: CoreConfig;
  logger: Logger;
  /** Served at `GET /metrics` (behind `METRICS_TOKEN`). */
  metrics: Registry;
  access: QueryAccess;
  /** Components of the same process that `/health` reports (`tributary start`). */
  health?: () => Record<string, ComponentHealth>;
}

export interface RunningQueryApi {
  url: string;
  close(): Promise<void>;
}

/** The query API on `QUERY_HOST:QUERY_PORT`; resolves once it listens. */
export async function startQueryApi(d: QueryApiDeps): Promise<RunningQueryApi> {
  const app = createQueryApp(d.clickhouse.client, {
    access: d.access,
    limits: d.config.queryLimits,
    metricsToken: d.config.metricsToken,
    registry: d.metrics,
    allowedLatenessMs: d.config.aggregator.allowedLatenessMs,
    logger: d.logger,
    ...(d.health ? { health: d.health } : {}),
  });
  const server = serve({ fetch: app.fetch, port: d.config.queryPort, hostname: d.config.queryHost });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve());
    server.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${urlHostOf(d.config.queryHost)}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface GatewayDeps {
  config: CoreConfig;
  brokers: string[];
  logger: Logger;
  /** Opens the salts it serves at `/v1/salts` (SALT_SOURCE=clickhouse), after the topics are ensured; none: not served. */
  openSalts: () => Promise<{ salts: SaltProvider | undefined; close(): Promise<void> }>;
}

export interface RunningGatewayService {
  url: string;
  /** The intake first (in-flight requests answered, producer disconnected), then the salt store. */
  close(steps?: CloseSteps): Promise<void>;
}

/**
 * `tributary gateway`'s service: the pipeline topics ensured, its salts opened, then the
 * signed-envelope intake (core/gateway/server.ts) with the configured keys, sites, Kafka TLS/SASL
 * and scrubber.
 */
export async function startGatewayService(d: GatewayDeps): Promise<RunningGatewayService> {
  await ensurePipelineTopics(createKafka(d.brokers, 'tributary-gateway-admin', d.logger, { security: d.config.kafkaSecurity }), d.config);
  const store = await d.openSalts();
  const g = d.config.gateway;
  const gateway: RunningGateway = await startGatewayServer({
    brokers: d.brokers,
    ...(d.config.kafkaSecurity ? { kafkaSecurity: d.config.kafkaSecurity } : {}),
    keys: g.signingKeys,
    ...(g.edgeSites ? { edgeSites: g.edgeSites } : {}),
    port: g.port,
    topics: { partials: d.config.topics.partials, rejected: d.config.topics.rejected, partialsRouting: d.config.topics.partialsRouting },
    logger: d.logger,
    scrub: createScrubber({ pathSecretPatterns: g.pathSecretPatterns }),
    ...(store.salts ? { salts: store.salts } : {}),
  });
  return {
    url: gateway.url,
    async close(steps = untrackedSteps) {
      await steps.run('gateway', () => gateway.close());
      await steps.run('salts', () => store.close());
    },
  };
}
