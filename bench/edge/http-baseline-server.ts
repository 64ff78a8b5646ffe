/**
 * A reference the HTTP benchmark is read against: a trivial Hono app on @hono/node-server (the
 * stack the Node edge served every request with before its node:http fast path) that reads the
 * body, JSON.parses it and answers 202. Same protocol as http-server.ts: prints `{"port":N}`,
 * and on SIGTERM one JSON line with its CPU time.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { AddressInfo } from 'node:net';

const app = new Hono();
let events = 0;
app.post('/v1/collect', async (c) => {
  JSON.parse(await c.req.text());
  events++;
  return c.json({ ok: true }, 202);
});
const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
server.once('listening', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
process.once('SIGTERM', () => {
  const cpu = process.cpuUsage();
  process.stdout.write(`${JSON.stringify({ envelopes: 0, envelopeBytes: 0, rows: 0, events, rejected: 0, dropped: {}, refused: {}, cpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
  process.exit(0);
});
