import type { RunningAggregator } from './aggregator/kafka-runner.ts';
import type { BackgroundComponent } from './background.ts';
import type { RunningRejectedSink } from './rejected/rejected-sink.ts';
import { untrackedSteps, type CloseSteps } from './shutdown.ts';
import type { ClickHouse } from './clickhouse/client.ts';
import type { CoreConfig } from './config/core-config.ts';
import type { Env } from './config/env.ts';
import type { Logger } from './log.ts';
import { createMetricsRegistry } from './metrics.ts';
import type { Registry } from 'prom-client';
import { resolveQueryAccess } from './query/read-access.ts';
import { createClickHouseSaltProvider } from './salts/clickhouse-salt-provider.ts';
import { connectPipelineKafka, openMigratedClickHouse, startAggregator, startEdge, startQueryApi, type ConsumersHealth, type RunningConsumers } from './services.ts';
import { parseEdgeConfig } from '../edge/config.ts';

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

export type PipelineHealth = ConsumersHealth;

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

  const clickhouse = await openMigratedClickHouse(config, logger, { retention: true });
  const metrics = createMetricsRegistry();
  const kafka = await connectPipelineKafka(config, brokers, 'tributary', logger);

  // Set once the edge and the query API are up; until then both consumers report `joining`.
  const consumers: { current?: RunningConsumers } = {};
  const health = (): PipelineHealth => consumers.current?.health() ?? { aggregator: { status: 'joining' }, rejected_sink: { status: 'joining' } };

  const saltProvider =
    config.saltSource === 'clickhouse'
      ? createClickHouseSaltProvider({ client: clickhouse.client, epochMs: edgeConfig.config.saltEpochMs, retentionEpochs: edgeConfig.config.saltRetentionEpochs, now: Date.now })
      : undefined;
  const edge = await startEdge({ config, edge: edgeConfig.config, brokers, logger, ...(saltProvider ? { saltProvider } : {}), components: health });
  const queryApi = await startQueryApi({ clickhouse, config, logger: logger.child({ component: 'query_api' }), metrics, access, health });

  const started = startAggregator({ kafka, clickhouse, config, logger, metrics });
  consumers.current = started;

  return {
    edgeUrl: edge.url,
    queryUrl: queryApi.url,
    brokers,
    clickhouse,
    aggregator: started.aggregator,
    rejectedSink: started.rejectedSink,
    metrics,
    health,
    fatal: started.fatal,
    async stop(steps = untrackedSteps) {
      await steps.run('edge', () => edge.close());
      await started.stop(steps);
      await steps.run('query_api', () => queryApi.close());
      await steps.run('clickhouse', () => clickhouse.close());
    },
  };
}
