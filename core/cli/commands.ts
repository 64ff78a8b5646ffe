import { openClickHouse } from '../clickhouse/client.ts';
import { assertEmbeddedDirectoryFree } from '../clickhouse/embedded-owner.ts';
import { migrate } from '../clickhouse/migrate.ts';
import { applyRetention, describeRetention } from '../clickhouse/retention.ts';
import type { CoreConfig } from '../config/core-config.ts';
import { startLocalKafka } from '../../tools/kafka-local/local-broker.ts';
import type { Logger } from '../log.ts';
import type { Shutdown } from '../shutdown.ts';
import type { ComponentHealth } from '../background.ts';
import { startPipeline } from '../pipeline.ts';
import { connectPipelineKafka, openMigratedClickHouse, startAggregator, startEdge, startGatewayService, startQueryApi } from '../services.ts';
import { createMetricsRegistry } from '../metrics.ts';
import { serveMetrics } from '../metrics-server.ts';
import { resolveQueryAccess } from '../query/read-access.ts';
import { createClickHouseSaltProvider, probeSaltStore } from '../salts/clickhouse-salt-provider.ts';
import { parseEdgeConfig, type EdgeConfig } from '../../edge/config.ts';
import { parseGatewayClientConfig } from '../../edge/gateway-config.ts';
import { createGatewaySaltProvider } from '../../edge/gateway-salt-provider.ts';
import { SETTINGS, readEnum } from '../../shared/config/index.ts';
import type { SaltProvider } from '../../shared/salts.ts';

/**
 * Refuses at once, before a broker or topics are touched, when the embedded ClickHouse this
 * command would open is held by another live process (README "Processes and topologies").
 */
function refuseEmbeddedInUse(config: CoreConfig): void {
  if (config.clickhouse.kind === 'embedded') assertEmbeddedDirectoryFree(config.clickhouse.path);
}

function requireBrokers(config: CoreConfig): string[] {
  if (!config.kafkaBrokers) throw new Error('KAFKA_BROKERS is not set: point it at your brokers (host:port,...) or run `tributary start`, which starts a local broker');
  return config.kafkaBrokers;
}

export async function runStart(config: CoreConfig, logger: Logger, shutdown: Shutdown): Promise<number> {
  refuseEmbeddedInUse(config);
  let brokers = config.kafkaBrokers;
  if (!brokers) {
    if (config.kafkaSecurity !== undefined) throw new Error('KAFKA_SSL and KAFKA_SASL_* are for brokers you point KAFKA_BROKERS at: the local broker of `tributary start` is plaintext without authentication. Set KAFKA_BROKERS, or unset them');
    console.log('Starting local Kafka (first run downloads the broker jars with Maven)...');
    const kafka = await startLocalKafka({ onEvent: (event, fields) => logger.info({ event, ...fields }) });
    brokers = [kafka.brokers];
    console.log(kafka.alreadyRunning ? `Using local Kafka at ${kafka.brokers}` : `Local Kafka started at ${kafka.brokers} in ${kafka.startupMs} ms (stop it with: npx tributary kafka stop)`);
  }
  // `start` is the local development pipeline: demo write key and dev salt unless configured.
  const pipeline = await startPipeline(config, { TRIBUTARY_ENV: 'dev', ...process.env }, brokers, logger);
  const site = 'demo';
  const aggregatorLine = (h: ComponentHealth): string =>
    h.status === 'running'
      ? 'running'
      : h.status === 'degraded'
        ? `restarting its Kafka consumer after a crash (${h.error ?? 'see the log'}); events are accepted meanwhile`
        : `joining its consumer group: results catch up in the background (after a crash this takes up to AGGREGATOR_SESSION_TIMEOUT_MS=${config.aggregator.sessionTimeoutMs} ms; events are accepted meanwhile)`;
  const early = pipeline.health().aggregator;
  if (early.status !== 'failed') {
    console.log(`
Tributary is accepting events.
  ClickHouse : ${pipeline.clickhouse.description}
  Kafka      : ${brokers.join(',')}
  Edge       : ${pipeline.edgeUrl} (accepting events)
  Aggregator : ${aggregatorLine(early)}
  Query API  : ${pipeline.queryUrl}
  Health     : ${pipeline.edgeUrl}/health, ${pipeline.queryUrl}/health

Send an event (write key wk_demo -> site "${site}"):
  curl -s -u wk_demo: -H 'content-type: application/json' ${pipeline.edgeUrl}/v1/track \\
    -d '{"event":"signup","userId":"u1","properties":{"value":3}}'

Read results (windows become final ${Math.round((config.aggregator.windowSizeMs + config.aggregator.allowedLatenessMs) / 1000)} s after they start, plus the edge watermark delay):
  curl -s '${pipeline.queryUrl}/api/v1/timeseries?site=${site}&granularity=minute'
  curl -s '${pipeline.queryUrl}/api/v1/totals?site=${site}'

Press Ctrl-C to stop.`);
  }
  const announce = announceAggregatorRunning(() => pipeline.health().aggregator.status === 'running' && (pipeline.aggregator.current()?.partitions().length ?? 0) > 0, logger);
  const outcome = await Promise.race([shutdown.signal.then((signal) => ({ kind: 'signal' as const, signal })), pipeline.fatal.then((f) => ({ kind: 'fatal' as const, ...f }))]);
  clearInterval(announce);
  if (outcome.kind === 'signal') {
    logger.info({ event: 'shutdown_requested', signal: outcome.signal });
    await pipeline.stop(shutdown);
    return 0;
  }
  // A pipeline whose consumer is dead must not keep acknowledging events into a topic nobody
  // reads (ADR 0011): close the edge first, say what happened and what to run, exit non-zero.
  logger.error({ event: 'pipeline_failed', component: outcome.component, err: outcome.error.message });
  shutdown.armDeadline(1);
  await pipeline.stop(shutdown);
  console.error(startFailureMessage(config, outcome.component, outcome.error));
  return 1;
}

/**
 * Prints one line once the aggregator has joined its group and restored a partition (a state
 * mismatch shows at the restore, just after the join); returns the timer to clear.
 */
function announceAggregatorRunning(restored: () => boolean, logger: Logger): ReturnType<typeof setInterval> {
  const timer = setInterval(() => {
    if (!restored()) return;
    clearInterval(timer);
    logger.info({ event: 'aggregator_running' });
    console.log('Aggregator : running (joined its consumer group; results are current once it has caught up)');
  }, 250);
  timer.unref();
  return timer;
}

/** What `tributary start` prints when a consumer of the pipeline failed: what happened and what to run. */
export function startFailureMessage(config: CoreConfig, component: 'aggregator' | 'rejected_sink', error: Error): string {
  const local = config.kafkaBrokers === undefined && config.clickhouse.kind === 'embedded';
  return [
    '',
    `Tributary stopped: the ${component === 'aggregator' ? 'aggregator' : 'rejected-events sink'} failed, so events would no longer be counted.`,
    `  ${error.message}`,
    'The edge was closed first: nothing was acknowledged that the pipeline could not process.',
    '',
    'What to do:',
    local
      ? `  - If this is local state that no longer fits together (e.g. a new CLICKHOUSE_PATH with a broker that kept the offsets of an earlier run),
    start over from empty local state: npx tributary reset --yes   (removes the local broker's data, ${config.clickhouse.kind === 'embedded' ? config.clickhouse.path : 'ClickHouse'} and ${config.dedupDir}), then npx tributary start`
      : '  - KAFKA_BROKERS or CLICKHOUSE_URL point at shared systems: do not reset them blindly. `tributary reset` removes local state only (see docs/OPERATIONS.md).',
    '  - Otherwise restore the missing state, or see docs/OPERATIONS.md "When the aggregator fails".',
  ].join('\n');
}

export async function runEdge(config: CoreConfig, logger: Logger, shutdown: Shutdown): Promise<number> {
  const brokers = requireBrokers(config);
  if (config.saltSource === 'clickhouse') refuseEmbeddedInUse(config);
  const edgeConfig = parseEdgeConfig(process.env, { pseudonymSaltRequired: config.saltSource === 'static' });
  if (!edgeConfig.ok) throw new Error(`edge configuration is not valid:\n  - ${edgeConfig.errors.join('\n  - ')}`);
  // EDGE_PROCESSES > 1: every worker process builds its own salt provider (edge-worker.ts).
  const multi = config.edgeProcesses > 1;
  if (multi && config.saltSource === 'clickhouse' && config.clickhouse.kind === 'embedded') {
    throw new Error(`EDGE_PROCESSES=${config.edgeProcesses} with SALT_SOURCE=clickhouse needs a ClickHouse server (CLICKHOUSE_URL) that all edge processes share: an embedded store belongs to one process. Or set SALT_SOURCE=gateway or static`);
  }
  const salts = multi ? { provider: undefined, close: async () => {} } : await edgeSalts(config, edgeConfig.config, logger);
  const edge = await startEdge({
    config,
    edge: edgeConfig.config,
    brokers,
    logger,
    ...(salts.provider ? { saltProvider: salts.provider } : {}),
    ...(multi ? { workers: { processes: config.edgeProcesses, setup: new URL('./edge-worker.ts', import.meta.url).href } } : {}),
  });
  logger.info({ event: 'edge_listening', url: edge.url, salt_source: config.saltSource });
  const signal = await shutdown.signal;
  logger.info({ event: 'shutdown_requested', signal });
  await shutdown.run('edge', () => edge.close());
  await shutdown.run('salts', () => salts.close());
  return 0;
}

/**
 * The salts of `tributary edge`, by SALT_SOURCE: `clickhouse` (default) reads and creates them in
 * the ClickHouse store every edge and the gateway share (CLICKHOUSE_URL; an embedded store is
 * private to this process, so only one edge can use it); `gateway` fetches them from `tributary
 * gateway`, like Workers and Deno edges; `static` derives them from PSEUDONYM_SALT.
 */
export async function edgeSalts(config: CoreConfig, edge: EdgeConfig, logger: Logger): Promise<{ provider: SaltProvider | undefined; close(): Promise<void> }> {
  if (config.saltSource === 'static') return { provider: undefined, close: async () => {} };
  if (config.saltSource === 'gateway') {
    const gateway = parseGatewayClientConfig(process.env, { defaultEdgeId: 'node' });
    if (!gateway.ok) throw new Error(`SALT_SOURCE=gateway needs the gateway's address and this edge's key:\n  - ${gateway.errors.join('\n  - ')}`);
    const provider = createGatewaySaltProvider({
      gateway: gateway.config,
      epochMs: edge.saltEpochMs,
      retentionEpochs: edge.saltRetentionEpochs,
      log: (fields) => logger.info({ component: 'edge', ...fields }),
    });
    const prefetch = setInterval(() => void provider.prefetch(), 1000);
    return { provider, close: async () => clearInterval(prefetch) };
  }
  const store = await openSaltStore(config, edge.saltEpochMs, edge.saltRetentionEpochs, logger, 'or choose SALT_SOURCE=gateway or static', { migrateEmbedded: true });
  return { provider: store.salts, close: store.close };
}

/** The ClickHouse salt store (ADR 0006): a missing table stops the start, an unreachable store only delays salts (503 until it is back). */
async function openSaltStore(
  config: CoreConfig,
  epochMs: number,
  retentionEpochs: number,
  logger: Logger,
  alternative: string,
  o: { migrateEmbedded?: boolean } = {},
): Promise<{ salts: SaltProvider; close(): Promise<void> }> {
  const clickhouse = await openClickHouse(config.clickhouse);
  // An embedded store belongs to this process alone: it is set up here; a server is migrated by `tributary migrate`.
  if (o.migrateEmbedded && config.clickhouse.kind === 'embedded') await migrate(clickhouse.client);
  const probe = await probeSaltStore(clickhouse.client);
  if (probe.kind === 'missing_table') {
    await clickhouse.close();
    throw new Error(`ClickHouse (${clickhouse.description}) has no table pseudonym_salts: run \`tributary migrate\` against it first, ${alternative}`);
  }
  if (probe.kind === 'unreachable') logger.warn({ event: 'salt_store_unreachable', clickhouse: clickhouse.description, reason: probe.reason });
  logger.info({ event: 'salt_store', clickhouse: clickhouse.description, epoch_ms: epochMs, retention_epochs: retentionEpochs });
  const salts = createClickHouseSaltProvider({ client: clickhouse.client, epochMs, retentionEpochs, now: Date.now });
  return { salts, close: () => clickhouse.close() };
}

/**
 * The salts `tributary gateway` serves: the ClickHouse store's (SALT_SOURCE=clickhouse, the
 * default), or none (static). A store that is down at start-up only delays salts (503 until it is
 * back); a server without the table is a deployment error and stops the start.
 */
async function gatewaySalts(config: CoreConfig, logger: Logger): Promise<{ salts: SaltProvider | undefined; close(): Promise<void> }> {
  if (config.saltSource === 'static') return { salts: undefined, close: async () => {} };
  if (config.saltSource === 'gateway') throw new Error('SALT_SOURCE=gateway is for edges; the gateway serves the salts it reads from ClickHouse: unset SALT_SOURCE (clickhouse), or set it to static to serve none');
  // An embedded store is the gateway's own (as `tributary edge`'s is): migrated here, so the
  // documented local `tributary gateway` works without a `tributary migrate` first.
  return openSaltStore(config, config.salts.epochMs, config.salts.retentionEpochs, logger, 'or set SALT_SOURCE=static to serve no salts', { migrateEmbedded: true });
}

/** `tributary gateway`: signed HTTPS in, idempotent Kafka producer out (docs/DEPLOY-WORKERS.md). */
export async function runGateway(config: CoreConfig, logger: Logger, shutdown: Shutdown): Promise<number> {
  const brokers = requireBrokers(config);
  if (config.gateway.signingKeys.size === 0) throw new Error('GATEWAY_SIGNING_KEYS is not set: list each edge as edgeId:secret (the edge has the same secret as GATEWAY_SIGNING_KEY)');
  if (config.saltSource === 'clickhouse') refuseEmbeddedInUse(config);
  const gateway = await startGatewayService({ config, brokers, logger, openSalts: () => gatewaySalts(config, logger) });
  logger.info({ event: 'gateway_listening', url: gateway.url });
  const signal = await shutdown.signal;
  logger.info({ event: 'shutdown_requested', signal });
  await gateway.close(shutdown);
  return 0;
}

export async function runAggregator(config: CoreConfig, logger: Logger, shutdown: Shutdown): Promise<number> {
  const brokers = requireBrokers(config);
  refuseEmbeddedInUse(config);
  const clickhouse = await openMigratedClickHouse(config, logger);
  const kafka = await connectPipelineKafka(config, brokers, 'tributary-aggregator', logger);
  const registry = createMetricsRegistry();
  const consumers = startAggregator({ kafka, clickhouse, config, logger, metrics: registry });
  // Unlike `tributary start` (whose edge must not wait), this command has nothing to serve before
  // its consumers run: a start that fails ends it at once with the start's error.
  try {
    await consumers.started;
  } catch (e) {
    await consumers.stop(shutdown);
    await shutdown.run('clickhouse', () => clickhouse.close());
    throw e;
  }
  const metrics = await serveMetrics(registry, config.metricsPort, { hostname: config.metricsHost, token: config.metricsToken });
  logger.info({ event: 'aggregator_started', clickhouse: clickhouse.description, metrics: metrics.url });
  // A fatal error (state mismatch, permanent ClickHouse error) ends the process non-zero so a supervisor and a human notice.
  const outcome = await Promise.race([shutdown.signal.then((signal) => ({ signal })), consumers.fatal.then((f) => f.error)]);
  if (outcome instanceof Error) shutdown.armDeadline(1);
  else logger.info({ event: 'shutdown_requested', signal: outcome.signal });
  await consumers.stop(shutdown);
  await shutdown.run('metrics', () => metrics.close());
  await shutdown.run('clickhouse', () => clickhouse.close());
  if (outcome instanceof Error) {
    console.error(`tributary aggregator stopped: ${outcome.message}`);
    return 1;
  }
  return 0;
}

export async function runQueryApi(config: CoreConfig, logger: Logger, shutdown: Shutdown): Promise<number> {
  // `development` counts as dev here as everywhere; a value that is not valid counts as production.
  const access = resolveQueryAccess({ readKeys: config.queryReadKeys, host: config.queryHost, dev: readEnum(process.env, SETTINGS.TRIBUTARY_ENV, []) === 'dev' });
  refuseEmbeddedInUse(config);
  const clickhouse = await openClickHouse(config.clickhouse);
  const queryApi = await startQueryApi({ clickhouse, config, logger, metrics: createMetricsRegistry(), access });
  logger.info({ event: 'query_api_listening', host: config.queryHost, port: config.queryPort, access: access.kind === 'open' ? 'open (dev)' : `${access.keys.length} read key(s)` });
  const signal = await shutdown.signal;
  logger.info({ event: 'shutdown_requested', signal });
  await shutdown.run('query_api', () => queryApi.close());
  await shutdown.run('clickhouse', () => clickhouse.close());
  return 0;
}

export async function runMigrate(config: CoreConfig): Promise<number> {
  refuseEmbeddedInUse(config);
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
