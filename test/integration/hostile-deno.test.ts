/**
 * The hostile-input table (test/support/hostile-cases.ts) against the Deno edge: edge/deno/main.ts
 * in a real Deno process (the npm-shipped binary), flushing to a gateway app in this process.
 * Plus what only a real process shows: gzip bombs sent at once stay within a memory bound
 * (the Deno edge's RSS, read from /proc).
 */
import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayApp } from '../../core/gateway/app.ts';
import type { PipelineSink } from '../../shared/ports/pipeline-sink.ts';
import { silentLogger } from '../../core/log.ts';
import { expectedOn, HOSTILE_CASES, HOSTILE_WRITE_KEY, outcomeOf, toRequest } from '../support/hostile-cases.ts';
import { memoryOf, startDenoEdge, type DenoEdge } from './helpers/deno-edge.ts';

const SECRET = 'deno-hostile-gateway-secret-0123456789abcdef';

const producer: PipelineSink = { sendPartials: async () => undefined, sendRejected: async () => undefined };
let gatewayServer: ServerType;
let deno: DenoEdge | undefined;
let denoUrl = '';


beforeAll(async () => {
  const app = createGatewayApp({ keys: new Map([['deno-hostile', SECRET]]), producer, logger: silentLogger() });
  gatewayServer = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => gatewayServer.once('listening', () => resolve()));
  const gatewayUrl = `http://127.0.0.1:${(gatewayServer.address() as AddressInfo).port}`;

  deno = await startDenoEdge({
    TRIBUTARY_WRITE_KEYS: `${HOSTILE_WRITE_KEY}:demo`,
    PSEUDONYM_SALT: 'deno-hostile-salt-0123456789',
    SALT_SOURCE: 'static',
    FLUSH_INTERVAL_MS: '20',
    GATEWAY_URL: gatewayUrl,
    EDGE_ID: 'deno-hostile',
    GATEWAY_SIGNING_KEY: SECRET,
  });
  denoUrl = deno.url;
}, 60_000);

afterAll(async () => {
  await deno?.stop();
  await new Promise<void>((resolve) => (gatewayServer ? gatewayServer.close(() => resolve()) : resolve()));
});

describe('hostile inputs on the Deno edge', () => {
  it.each(HOSTILE_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const expected = expectedOn(c, 'deno');
    const res = await fetch(toRequest(denoUrl, await c.build()));
    expect(await outcomeOf(res, expected)).toEqual({ ...expected, json: true });
  });

  it('answers four gzip bombs sent at once with 413, the process growing by far less than they inflate to', async () => {
    // 300 MiB of spaces each (about 300 KiB on the wire): before decompression was fed in
    // slices, Deno inflated each body whole before the cap check (4 at once: +2 GB).
    const bomb = new Uint8Array(gzipSync(Buffer.alloc(300 * 1024 * 1024, 0x20), { level: 9 }));
    const before = memoryOf(deno!.child.pid!);
    const answers = await Promise.all(
      Array.from({ length: 4 }, () => fetch(`${denoUrl}/v1/batch`, { method: 'POST', headers: { authorization: `Basic ${btoa(`${HOSTILE_WRITE_KEY}:`)}`, 'content-encoding': 'gzip' }, body: bomb })),
    );
    for (const res of answers) {
      expect(res.status).toBe(413);
      expect(await res.json()).toMatchObject({ error: { code: 'payload_too_large' } });
    }
    const after = memoryOf(deno!.child.pid!);
    // Peak resident memory over the whole run so far, against the resident memory before the bombs.
    expect(after.peak - before.rss).toBeLessThan(200);
  });
});
