import { serve } from '@hono/node-server';
import { Kafka, logLevel } from 'kafkajs';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { hostname as osHostname } from 'node:os';
import type { EdgeConfig } from '../config.ts';
import { createEdge } from '../edge.ts';
import type { EdgeLog, PartialSink, RejectedSink } from '../ports.ts';
import type { SaltProvider } from '../salt-provider.ts';
import { nodeHmac } from './hmac.ts';
import { createKafkaSinks } from './kafka-sink.ts';

export interface NodeEdgeOptions {
  config: EdgeConfig;
  /** Kafka bootstrap servers, `host:port`. */
  brokers: string[];
  /** 0 picks a free port (see the returned `url`). */
  port: number;
  /** Interface to listen on. Default: all interfaces. */
  hostname?: string;
  /** Default `edge-<hostname>-<random>`: a fresh source per process, so sequences never collide. */
  sourceId?: string;
  /** Default `{ partials: 'partials', rejected: 'rejected' }`. */
  topics?: { partials?: string; rejected?: string };
  /** Structured operational events. Default: JSON lines on stderr, except routine `flushed`. */
  log?: EdgeLog;
  /** Epoch salts; default derived from `PSEUDONYM_SALT` (see `createStaticSaltProvider`). */
  saltProvider?: SaltProvider;
  /**
   * Sinks to use instead of Kafka (then `brokers` is ignored and no Kafka client is created):
   * for benchmarks of the edge alone and for tests.
   */
  sinks?: { partialSink: PartialSink; rejectedSink: RejectedSink };
}

export interface RunningNodeEdge {
  url: string;
  sourceId: string;
  /** Stops accepting requests, lets in-flight ones finish, flushes what is left, disconnects. */
  close(): Promise<void>;
}

/**
 * Runs the edge collector on Node: the runtime-neutral app from `createEdge` served by
 * @hono/node-server, with Kafka sinks and a flush timer.
 *
 * @example
 * ```ts
 * const edge = await startNodeEdge({ config, brokers: ['127.0.0.1:9092'], port: 8080 });
 * console.log(`edge at ${edge.url}`);
 * await edge.close();
 * ```
 */
export async function startNodeEdge(o: NodeEdgeOptions): Promise<RunningNodeEdge> {
  const sourceId = o.sourceId ?? `edge-${osHostname()}-${randomBytes(4).toString('hex')}`;
  const log: EdgeLog = o.log ?? defaultLog;
  const sinks = o.sinks !== undefined ? { ...o.sinks, connect: async () => undefined, disconnect: async () => undefined } : kafkaSinks(o, sourceId);
  await sinks.connect();

  const edge = createEdge({
    config: o.config,
    sourceId,
    partialSink: sinks.partialSink,
    rejectedSink: sinks.rejectedSink,
    log,
    pseudonymMac: nodeHmac,
    ...(o.saltProvider ? { saltProvider: o.saltProvider } : {}),
  });
  const timer = setInterval(() => {
    edge.flusher.tick().catch((e: unknown) => log({ event: 'flush_crashed', error: e instanceof Error ? e.message : String(e) }));
  }, o.config.flushIntervalMs);

  const server = serve({ fetch: edge.app.fetch, port: o.port, ...(o.hostname ? { hostname: o.hostname } : {}) });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve());
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  const host = o.hostname && o.hostname !== '0.0.0.0' && o.hostname !== '::' ? o.hostname : '127.0.0.1';
  log({ event: 'edge_started', source_id: sourceId, port });

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    sourceId,
    close() {
      closing ??= (async () => {
        // The timer keeps flushing while in-flight requests wait for their group commit.
        await new Promise<void>((resolve) => server.close(() => resolve()));
        clearInterval(timer);
        const last = await edge.flusher.close();
        if (!last.ok) log({ event: 'final_flush_failed', pending_envelopes: last.pendingEnvelopes, error: last.error });
        await sinks.disconnect();
      })();
      return closing;
    },
  };
}

function kafkaSinks(o: NodeEdgeOptions, sourceId: string) {
  const kafka = new Kafka({
    clientId: sourceId,
    brokers: o.brokers,
    logLevel: logLevel.WARN,
    // Short client-level retries: the flusher retries too, and waiting clients are answered
    // with 503 + Retry-After rather than held for kafkajs' default 30 s back-off. kafkajs warns
    // that limited retries weaken idempotence; duplicates are still harmless because a failed
    // envelope is re-sent with its sequence number and the aggregator drops (source, seq) repeats.
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  return createKafkaSinks({
    kafka,
    topics: { partials: o.topics?.partials ?? 'partials', rejected: o.topics?.rejected ?? 'rejected' },
  });
}

const defaultLog: EdgeLog = (fields) => {
  if (fields.event === 'flushed') return;
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), component: 'edge', ...fields })}\n`);
};
