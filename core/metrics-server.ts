import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** A Prometheus scrape endpoint for processes without an HTTP API of their own (the aggregator). */
export async function serveMetrics(registry: Registry, port: number, hostname = '0.0.0.0'): Promise<{ url: string; close(): Promise<void> }> {
  const app = new Hono();
  app.get('/metrics', async (c) => c.body(await registry.metrics(), 200, { 'content-type': registry.contentType }));
  app.get('/health', (c) => c.json({ ok: true }));
  const server = serve({ fetch: app.fetch, port, hostname });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://${hostname === '0.0.0.0' ? '127.0.0.1' : hostname}:${bound}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
