import { getRequestListener } from '@hono/node-server';
import { createKafkaClient, type KafkaClientOptions, type KafkaLogLine } from '../../core/kafka/client.ts';
import type { AddressInfo } from 'node:net';
import type { EdgeConfig } from '../config.ts';
import { createEdge } from '../edge.ts';
import { jsonAnswer } from '../answer.ts';
import type { EdgeLog } from '../ports.ts';
import { startNodeEdgeCluster } from './cluster.ts';
import { defaultLog, defaultSourceId } from './defaults.ts';
import { nodeHmac } from './hmac.ts';
import { openDedupStore, type DedupStore } from './dedup-store.ts';
import { createNodeEdgeServer } from './http-listener.ts';
import { resolve } from 'node:path';
import { createPipelineProducer } from '../../core/kafka/pipeline-producer.ts';
import { createFlushJournal, wholeEnvelopeRecords, type FlushJournal } from './flush-journal.ts';
import { trackSinkHealth } from './sink-health.ts';
import { errorMessage } from '../../shared/errors.ts';
import type { NodeEdgeOptions, RunningNodeEdge } from './options.ts';

// The types of the options and the handle live in options.ts (cluster.ts needs them too); the
// entry keeps exporting them for its callers.
export type { NodeEdgeOptions, NodeEdgeWorkerExtras, NodeEdgeWorkerSetup, RunningNodeEdge } from './options.ts';

/**
 * Runs the edge collector on Node: the runtime-neutral edge from `createEdge` on node:http
 * (ingest paths and /health served directly, see `createNodeEdgeListener`; anything else
 * through the Hono app and @hono/node-server), with a Kafka sink and a flush timer.
 *
 * @example
 * ```ts
 * const edge = await startNodeEdge({ config, brokers: ['127.0.0.1:9092'], port: 8080 });
 * console.log(`edge at ${edge.url}`);
 * await edge.close();
 * ```
 */
export async function startNodeEdge(o: NodeEdgeOptions): Promise<RunningNodeEdge> {
  if ((o.processes ?? 1) > 1) return startNodeEdgeCluster(o);
  const sourceId = o.sourceId ?? defaultSourceId();
  const log: EdgeLog = o.log ?? defaultLog;
  const sink = o.sink !== undefined ? { ...wholeEnvelopeRecords(o.sink), connect: async () => undefined, disconnect: async () => undefined } : kafkaSink(o, sourceId, log);
  await sink.connect();

  // Retries are deduplicated in a store on disk shared by every edge process of this machine (ADR 0010).
  let flushJournal: FlushJournal | undefined;
  const dedup = o.config.dedupWindowMs > 0 ? openEdgeDedupStore(o.config, log, () => void flushJournal?.recover()) : undefined;
  // Envelopes are journaled in that store before they go to Kafka; the journals of dead edge
  // processes are re-sent before this one serves (their events' retries get 503 in_flight until then).
  if (dedup !== undefined) {
    flushJournal = createFlushJournal({ store: dedup, sink, log, ...(o.testOnlyAfterKafkaAck ? { afterKafkaAck: o.testOnlyAfterKafkaAck } : {}) });
    await flushJournal.recover();
  }
  // What /health says about the sink comes from the sends themselves: the flusher sends at least
  // a heartbeat every HEARTBEAT_MS, so an unreachable broker shows within one heartbeat.
  const sinkHealth = trackSinkHealth({ sink: flushJournal?.sink ?? sink, now: Date.now });

  const edge = createEdge({
    config: o.config,
    sourceId,
    sink: sinkHealth.sink,
    log,
    pseudonymMac: nodeHmac,
    ...(o.saltProvider ? { saltProvider: o.saltProvider } : {}),
    ...(dedup ? { dedup } : {}),
    ...(flushJournal ? { flusher: { journal: flushJournal.journal } } : {}),
  });
  const timer = setInterval(() => {
    edge.flusher.tick().catch((e: unknown) => log({ event: 'flush_crashed', error: errorMessage(e) }));
  }, o.config.flushIntervalMs);
  const dedupTimer =
    dedup === undefined
      ? undefined
      : setInterval(() => {
          try {
            dedup.maintain();
          } catch (e) {
            log({ event: 'dedup_maintenance_failed', error: errorMessage(e) });
          }
          // Journals of processes that died, and re-sends that failed before (never rejects).
          void flushJournal?.recover();
        }, DEDUP_MAINTAIN_MS);
  dedupTimer?.unref();

  /**
   * `GET /health`: the edge's counters plus the sink's state and the components of this
   * process. 503 with `status: "degraded"` while the sink fails (clients get 503
   * sink_unavailable meanwhile) or the edge is overloaded; 503 with `status: "failed"` when a
   * component failed (the events would not be processed).
   */
  const health = () => {
    const base = edge.http.health();
    const sink = sinkHealth.state();
    const components = o.components?.() ?? {};
    const failed = Object.values(components).some((c) => c.status === 'failed');
    const degraded = base.status !== 200 || sink.status !== 'ok';
    const status = failed ? 'failed' : degraded ? 'degraded' : 'ok';
    return jsonAnswer(status === 'ok' ? 200 : 503, { ...(JSON.parse(base.body ?? '{}') as Record<string, unknown>), ok: status === 'ok', status, sink, ...components });
  };
  const http = { ...edge.http, health };

  // Hot paths straight from node:http into the edge's HTTP semantics; the rest through Hono.
  // Timeouts and caps against slow and hostile clients: docs/EDGE.md "Limits".
  const server = createNodeEdgeServer({ http, fallback: getRequestListener(edge.app.fetch), countryHeader: o.config.countryHeader, limits: o.config });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve());
    server.once('error', reject);
    server.listen(o.port, o.hostname);
  });
  const { port } = server.address() as AddressInfo;
  const host = o.hostname && o.hostname !== '0.0.0.0' && o.hostname !== '::' ? o.hostname : '127.0.0.1';
  log({ event: 'edge_started', source_id: sourceId, port });

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    sourceId,
    async health() {
      const answer = health();
      return [{ sourceId, status: answer.status, body: JSON.parse(answer.body ?? '{}') as Record<string, unknown> }];
    },
    close() {
      closing ??= (async () => {
        // The timer keeps flushing while in-flight requests wait for their group commit.
        await new Promise<void>((resolve) => server.close(() => resolve()));
        clearInterval(timer);
        const last = await edge.flusher.close();
        if (!last.ok) log({ event: 'final_flush_failed', pending_envelopes: last.pendingEnvelopes, error: last.error });
        // After the last flush: its marks are committed; marks still pending become absent.
        clearInterval(dedupTimer);
        dedup?.close();
        await sink.disconnect();
      })();
      return closing;
    },
  };
}

/** How often an edge process rotates and expires dedup generations (cheap when there is nothing to do). */
const DEDUP_MAINTAIN_MS = 5000;

function openEdgeDedupStore(config: EdgeConfig, log: EdgeLog, orphanJournalFound: () => void): DedupStore {
  const dir = resolve(config.dedupDir);
  let store: DedupStore;
  try {
    store = openDedupStore({ dir, windowMs: config.dedupWindowMs, log, orphanJournalFound });
    store.maintain();
  } catch (e) {
    const reason = errorMessage(e);
    throw new Error(
      `the retry deduplication store in DEDUP_DIR=${dir} cannot be opened (${reason}): check that the directory is writable and on a local disk; it holds only retry marks, so it can be deleted (retries of events acknowledged in the last DEDUP_WINDOW_MS may then be counted twice), or set DEDUP_WINDOW_MS=0 to turn deduplication off`,
      { cause: e },
    );
  }
  log({ event: 'dedup_store_opened', dir, window_ms: config.dedupWindowMs, generations: store.stats().generations });
  return store;
}

/** The Kafka client settings of one edge process's producer. */
export function edgeKafkaClientOptions(o: Pick<NodeEdgeOptions, 'brokers' | 'kafkaSecurity'>, sourceId: string, log: EdgeLog): KafkaClientOptions {
  return {
    clientId: sourceId,
    brokers: o.brokers,
    security: o.kafkaSecurity,
    log: ({ level, fields }: KafkaLogLine) => log({ level, ...fields }),
    // Short client-level retries: the flusher retries too, and waiting clients are answered
    // with 503 + Retry-After rather than held for kafkajs' default 30 s back-off.
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
  };
}

/**
 * The edge's sink on Kafka: encoded envelopes to `topics.partials` (split by cell with
 * `partialsRouting: 'cell'`, the default, ADR 0008), redacted rejected events as JSON to
 * `topics.rejected` keyed by site; a send resolves once all in-sync replicas have it, which is
 * what the edge's group commit promises clients.
 */
function kafkaSink(o: NodeEdgeOptions, sourceId: string, log: EdgeLog) {
  const options = edgeKafkaClientOptions(o, sourceId, log);
  const kafkaLog = options.log;
  const kafka = createKafkaClient(options);
  return createPipelineProducer({
    kafka,
    topics: { partials: o.topics?.partials ?? 'partials', rejected: o.topics?.rejected ?? 'rejected', partialsRouting: o.topics?.partialsRouting ?? 'cell' },
    log: kafkaLog,
  });
}
