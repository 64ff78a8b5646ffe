/**
 * The chaos harness's "aggregator host": one child process holding the ClickHouse client (libchdb
 * binds a data directory to one process) and one or more aggregator instances of the same
 * consumer group. The harness SIGKILLs this whole process as the aggregator crash and restarts it
 * on the same directory. A loopback HTTP control channel lets the harness add and remove an
 * instance (rebalances), make ClickHouse writes fail for a while, and run the checker's queries on
 * the one client that may open the data directory.
 *
 * Configuration: the same environment as `tributary aggregator` (KAFKA_BROKERS, CLICKHOUSE_PATH or
 * CLICKHOUSE_URL, topics, group, window settings). It reports its control port over IPC.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startConfiguredAggregator } from '../../core/aggregator/from-config.ts';
import type { RunningAggregator } from '../../core/aggregator/kafka-runner.ts';
import { openClickHouse } from '../../core/clickhouse/client.ts';
import { migrate } from '../../core/clickhouse/migrate.ts';
import { parseCoreConfig } from '../../core/config/core-config.ts';
import { createKafka } from '../../core/kafka/client.ts';
import { createLogger } from '../../core/log.ts';
import { createWriteSwitch } from './write-switch.ts';
import type { HostMessage, HostState, QueryRequest } from './host-protocol.ts';

const parsed = parseCoreConfig(process.env);
if (!parsed.ok) throw new Error(`aggregator host configuration is not valid: ${parsed.errors.join('; ')}`);
const config = parsed.config;
if (!config.kafkaBrokers) throw new Error('aggregator host: KAFKA_BROKERS is not set');
const brokers = config.kafkaBrokers;
const logger = createLogger('tributary-chaos-aggregator-host', process.env.LOG_LEVEL ?? 'info');

const clickhouse = await openClickHouse(config.clickhouse);
await migrate(clickhouse.client);
const writes = createWriteSwitch(clickhouse);
const instances: RunningAggregator[] = [];
let started = 0;

async function addInstance(): Promise<void> {
  const n = ++started;
  const kafka = createKafka(brokers, `chaos-aggregator-${process.pid}-${n}`, logger);
  const instance = await startConfiguredAggregator(kafka, writes.clickhouse, config, logger.child({ instance: n }));
  // A fatal error stops the aggregator loudly; the host exits so the harness sees it and reports it.
  void instance.fatal.then((err) => {
    logger.error({ event: 'chaos_aggregator_fatal', instance: n, err: err.message });
    process.exit(1);
  });
  instances.push(instance);
  logger.info({ event: 'chaos_instance_added', instances: instances.length });
}

async function removeInstance(): Promise<void> {
  // The first instance stays: the group never goes empty by a rebalance fault.
  if (instances.length < 2) return;
  const last = instances.pop() as RunningAggregator;
  await last.stop();
  logger.info({ event: 'chaos_instance_removed', instances: instances.length });
}

function state(): HostState {
  return {
    pid: process.pid,
    instances: instances.length,
    clickhouseDown: writes.down,
    refusedWrites: writes.refused,
    stats: instances.map((i) => i.stats()),
    partitions: instances.flatMap((i) => i.partitions().map((p) => ({ partition: p.partition, epoch: p.epoch, committedOffset: p.committedOffset ?? null, openWindows: p.openWindows }))),
  };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return chunks.length === 0 ? {} : (JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
}

async function route(req: IncomingMessage): Promise<unknown> {
  const key = `${req.method ?? 'GET'} ${req.url ?? '/'}`;
  switch (key) {
    case 'GET /state':
      return state();
    case 'POST /instances':
      await addInstance();
      return state();
    case 'DELETE /instances':
      await removeInstance();
      return state();
    case 'POST /clickhouse/down':
      writes.down = true;
      logger.info({ event: 'chaos_clickhouse_writes_failing' });
      return state();
    case 'POST /clickhouse/up':
      writes.down = false;
      logger.info({ event: 'chaos_clickhouse_writes_restored', refused: writes.refused });
      return state();
    case 'POST /query': {
      // The checker's reads go to the real client, never through the failing switch.
      const q = (await readJson(req)) as QueryRequest;
      const rs = await clickhouse.client.query({ query: q.query, query_params: q.params ?? {}, format: 'JSONEachRow' });
      return { rows: await rs.json() };
    }
    default:
      throw Object.assign(new Error(`unknown control request ${key}`), { status: 404 });
  }
}

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  route(req).then(
    (body) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    },
    (err: unknown) => {
      const status = typeof err === 'object' && err !== null && 'status' in err ? Number((err as { status: unknown }).status) : 500;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: err instanceof Error ? err.message : String(err) }));
    },
  );
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));

await addInstance();
const port = (server.address() as AddressInfo).port;
logger.info({ event: 'chaos_aggregator_host_ready', port, clickhouse: clickhouse.description });
process.send?.({ type: 'ready', port } satisfies HostMessage);

async function shutdown(): Promise<void> {
  server.close();
  for (const i of instances.splice(0).reverse()) await i.stop().catch(() => undefined);
  await clickhouse.close();
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown());
process.once('SIGINT', () => void shutdown());
// The harness going away must not leave an aggregator running against its broker.
process.once('disconnect', () => void shutdown());
