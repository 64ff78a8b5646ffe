import type { PartialsRouting } from '../kafka/partials-router.ts';
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { Scrub } from '../../edge/pipeline/scrub.ts';
import type { SaltProvider } from '../../edge/salt-provider.ts';
import type { Logger } from '../log.ts';
import { createGatewayApp } from './app.ts';
import { createKafka, pinoKafkaLogSink } from '../kafka/client.ts';
import { createPipelineProducer } from '../kafka/pipeline-producer.ts';

export interface GatewayServerOptions {
  brokers: string[];
  /** edge id -> signing secret. */
  keys: ReadonlyMap<string, string>;
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

/**
 * Runs the gateway on Node: the Hono app from {@link createGatewayApp} served by
 * @hono/node-server, producing with an idempotent kafkajs producer.
 *
 * @example
 * ```ts
 * const gw = await startGateway({ brokers: ['127.0.0.1:9092'], keys, port: 8082, topics: { partials: 'partials', rejected: 'rejected' }, logger });
 * await gw.close();
 * ```
 */
export async function startGateway(o: GatewayServerOptions): Promise<RunningGateway> {
  // Short client retries: an edge waits for this answer, and a fast 503 lets it back off.
  const kafka = createKafka(o.brokers, 'tributary-gateway', o.logger, { retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 }, connectionTimeout: 3000 });
  const producer = createPipelineProducer({ kafka, topics: o.topics, log: pinoKafkaLogSink(o.logger) });
  await producer.connect();
  const app = createGatewayApp({ keys: o.keys, producer, logger: o.logger, ...(o.salts ? { salts: o.salts } : {}), ...(o.scrub ? { scrub: o.scrub } : {}) });
  const server = serve({ fetch: app.fetch, port: o.port, ...(o.hostname ? { hostname: o.hostname } : {}) });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve());
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  const host = o.hostname && o.hostname !== '0.0.0.0' && o.hostname !== '::' ? o.hostname : '127.0.0.1';
  o.logger.info({ event: 'gateway_started', port, edges: [...o.keys.keys()], serves_salts: o.salts !== undefined });
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await producer.disconnect();
      })();
      return closing;
    },
  };
}
