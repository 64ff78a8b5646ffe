import type { PartialsRouting } from '../kafka/partials-router.ts';
import { createAdaptorServer } from '@hono/node-server';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Hono } from 'hono';
import type { Scrub } from '../../shared/privacy/scrub.ts';
import type { SaltProvider } from '../../shared/salts.ts';
import type { EdgeSites } from '../config/gateway-keys.ts';
import type { KafkaSecurity } from '../config/kafka-security.ts';
import type { Logger } from '../log.ts';
import { createGatewayApp } from './app.ts';
import { DEFAULT_CONNECTION_LIMITS, limitConnections, lingerUnreadBodies, serverTimeouts, type ConnectionLimits } from './connection-limits.ts';
import type { GatewayEnv } from './middleware.ts';
import { createByteBudget } from './read-body.ts';
import { createRefusalLog, type RefusalLog } from './refusal-log.ts';
import { createKafka, pinoKafkaLogSink } from '../kafka/client.ts';
import { createPipelineProducer } from '../kafka/pipeline-producer.ts';

export interface GatewayServerOptions {
  brokers: string[];
  /** TLS/SASL to the brokers (`KAFKA_SSL`, `KAFKA_SASL_*`); unset: plaintext. */
  kafkaSecurity?: KafkaSecurity;
  /** edge id -> signing secret. */
  keys: ReadonlyMap<string, string>;
  /** edge id -> sites it may write (`GATEWAY_EDGE_SITES`); unset: every site. */
  edgeSites?: ReadonlyMap<string, EdgeSites>;
  /** 0 picks a free port (see the returned `url`). */
  port: number;
  hostname?: string;
  topics: { partials: string; rejected: string; partialsRouting?: PartialsRouting };
  logger: Logger;
  /** Epoch salts to serve at `GET /v1/salts/{epoch}` (the ClickHouse provider); unset: not served. */
  salts?: SaltProvider;
  /** The edges' scrubber (`PATH_SECRET_PATTERNS`), for rejected records. */
  scrub?: Scrub;
}

export interface RunningGateway {
  url: string;
  /** Stops accepting, lets in-flight requests finish, disconnects the producer. */
  close(): Promise<void>;
}

/** Body bytes the gateway holds at once, all requests together: 16 maximal (4 MiB) bodies, ~70 real envelopes. */
export const GATEWAY_INFLIGHT_BODY_BYTES = 64 * 1024 * 1024;
/** How often refused requests are summed up in the log (`gateway_requests_refused`). */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

export interface ListeningGateway {
  server: Server;
  url: string;
  /** Stops accepting, lets in-flight requests finish (each bounded by the request timeout). */
  close(): Promise<void>;
}

/**
 * Serves a gateway app on node:http with every connection bounded (ADR 0015): headers within
 * `headersTimeoutMs`, the whole request within `requestTimeoutMs`, idle sockets closed, at most
 * `maxConnections` open (the next answered 503 + Retry-After). Bodies are bounded by the app
 * (per request and in flight, see {@link createGatewayApp}).
 *
 * @example
 * ```ts
 * const gw = await listenGateway(createGatewayApp({ keys, producer, logger }), { port: 8082, logger });
 * await gw.close();
 * ```
 */
export async function listenGateway(
  app: Hono<GatewayEnv>,
  o: { port: number; hostname?: string; logger: Logger; limits?: Partial<ConnectionLimits>; refusals?: RefusalLog },
): Promise<ListeningGateway> {
  const limits = { ...DEFAULT_CONNECTION_LIMITS, ...o.limits };
  const server = createAdaptorServer({ fetch: app.fetch, serverOptions: serverTimeouts(limits), autoCleanupIncoming: false }) as Server;
  limitConnections(server, limits, () => o.refusals?.refused('too_many_connections', undefined));
  lingerUnreadBodies(server);
  server.listen(o.port, o.hostname);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve());
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  const host = o.hostname && o.hostname !== '0.0.0.0' && o.hostname !== '::' ? o.hostname : '127.0.0.1';
  const flusher = o.refusals ? setInterval(() => o.refusals?.flush(), REFUSAL_LOG_INTERVAL_MS) : undefined;
  flusher?.unref();
  let closing: Promise<void> | undefined;
  return {
    server,
    url: `http://${host}:${port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(flusher);
        o.refusals?.flush();
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

/**
 * Runs the gateway on Node: the Hono app from {@link createGatewayApp} served by
 * {@link listenGateway}, producing with an idempotent kafkajs producer.
 *
 * @example
 * ```ts
 * const gw = await startGateway({ brokers: ['127.0.0.1:9092'], keys, port: 8082, topics: { partials: 'partials', rejected: 'rejected' }, logger });
 * await gw.close();
 * ```
 */
export async function startGateway(o: GatewayServerOptions): Promise<RunningGateway> {
  // Short client retries: an edge waits for this answer, and a fast 503 lets it back off.
  const kafka = createKafka(o.brokers, 'tributary-gateway', o.logger, { retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 }, connectionTimeout: 3000, security: o.kafkaSecurity });
  const producer = createPipelineProducer({ kafka, topics: o.topics, log: pinoKafkaLogSink(o.logger) });
  await producer.connect();
  const refusals = createRefusalLog({ logger: o.logger, intervalMs: REFUSAL_LOG_INTERVAL_MS, now: Date.now });
  const app = createGatewayApp({
    keys: o.keys,
    ...(o.edgeSites ? { edgeSites: o.edgeSites } : {}),
    producer,
    logger: o.logger,
    refusals,
    budget: createByteBudget(GATEWAY_INFLIGHT_BODY_BYTES),
    ...(o.salts ? { salts: o.salts } : {}),
    ...(o.scrub ? { scrub: o.scrub } : {}),
  });
  const http = await listenGateway(app, { port: o.port, ...(o.hostname ? { hostname: o.hostname } : {}), logger: o.logger, refusals });
  o.logger.info({ event: 'gateway_started', port: Number(new URL(http.url).port), edges: [...o.keys.keys()], serves_salts: o.salts !== undefined, edge_sites: o.edgeSites ? 'bound' : 'every edge may write every site' });
  if (!o.edgeSites) o.logger.warn({ event: 'gateway_edge_sites_unbound', message: 'GATEWAY_EDGE_SITES is not set: every edge key may write every site; list each edge\'s sites (edgeId:site+site)' });
  let closing: Promise<void> | undefined;
  return {
    url: http.url,
    close() {
      closing ??= (async () => {
        await http.close();
        await producer.disconnect();
      })();
      return closing;
    },
  };
}
