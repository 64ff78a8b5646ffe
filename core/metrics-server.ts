import { serve } from '@hono/node-server';
import { Hono, type MiddlewareHandler } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { urlHostOf } from './listen-address.ts';

/**
 * Guards `GET /metrics` with METRICS_TOKEN (`Authorization: Bearer <token>`, compared in constant
 * time by hono's bearerAuth); without a token it lets every request through, which configuration
 * allows only on a loopback address (core-config.ts).
 */
export function metricsAccess(token: string | undefined): MiddlewareHandler {
  if (token === undefined) return async (_c, next) => next();
  return bearerAuth({ token, realm: 'tributary-metrics' });
}

export interface ServeMetricsOptions {
  /** Listening address; default 127.0.0.1. */
  hostname?: string;
  /** METRICS_TOKEN: required as a bearer token on /metrics when set. */
  token?: string | undefined;
}

/**
 * A Prometheus scrape endpoint for processes without an HTTP API of their own (the aggregator).
 *
 * @example
 * const metrics = await serveMetrics(registry, 9464, { hostname: '127.0.0.1', token: config.metricsToken });
 */
export async function serveMetrics(registry: Registry, port: number, options: ServeMetricsOptions = {}): Promise<{ url: string; close(): Promise<void> }> {
  const hostname = options.hostname ?? '127.0.0.1';
  const app = new Hono();
  app.use('/metrics', metricsAccess(options.token));
  app.get('/metrics', async (c) => c.body(await registry.metrics(), 200, { 'content-type': registry.contentType }));
  app.get('/health', (c) => c.json({ ok: true }));
  const server = serve({ fetch: app.fetch, port, hostname });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://${urlHostOf(hostname)}:${bound}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
