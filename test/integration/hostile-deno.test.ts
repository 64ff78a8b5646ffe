/**
 * The hostile-input table (test/support/hostile-cases.ts) against the Deno edge: edge/deno/main.ts
 * in a real Deno process (the npm-shipped binary), flushing to a gateway app in this process.
 * Plus what only a real process shows: gzip bombs sent at once stay within a memory bound
 * (the Deno edge's RSS, read from /proc).
 */
import { serve, type ServerType } from '@hono/node-server';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayApp } from '../../core/gateway/app.ts';
import type { GatewayProducer } from '../../core/gateway/ports.ts';
import { silentLogger } from '../../core/log.ts';
import { expectedOn, HOSTILE_CASES, HOSTILE_WRITE_KEY, outcomeOf, toRequest } from '../support/hostile-cases.ts';

const SECRET = 'deno-hostile-gateway-secret-0123456789abcdef';

const producer: GatewayProducer = { sendPartials: async () => undefined, sendRejected: async () => undefined };
let gatewayServer: ServerType;
let deno: ChildProcess;
let denoUrl = '';
const denoDir = mkdtempSync(join(tmpdir(), 'tributary-deno-hostile-'));
const output: string[] = [];

function denoExecutable(): string {
  // The npm package resolves its platform binary (@deno/<platform>) without network access.
  const api = createRequire(import.meta.url)('deno/install_api.cjs') as { runInstall(): string };
  return api.runInstall();
}

/** Resident and peak resident memory of a process, in MB (Linux /proc). */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

beforeAll(async () => {
  const app = createGatewayApp({ keys: new Map([['deno-hostile', SECRET]]), producer, logger: silentLogger() });
  gatewayServer = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => gatewayServer.once('listening', () => resolve()));
  const gatewayUrl = `http://127.0.0.1:${(gatewayServer.address() as AddressInfo).port}`;

  deno = spawn(denoExecutable(), ['run', '--allow-net=127.0.0.1', '--allow-env', '--allow-read', 'edge/deno/main.ts'], {
    cwd: join(import.meta.dirname, '../..'),
    env: {
      PATH: process.env.PATH ?? '',
      DENO_NO_UPDATE_CHECK: '1',
      DENO_DIR: denoDir,
      NO_COLOR: '1',
      TRIBUTARY_WRITE_KEYS: `${HOSTILE_WRITE_KEY}:demo`,
      PSEUDONYM_SALT: 'deno-hostile-salt-0123456789',
      SALT_SOURCE: 'static',
      FLUSH_INTERVAL_MS: '20',
      GATEWAY_URL: gatewayUrl,
      EDGE_ID: 'deno-hostile',
      GATEWAY_SIGNING_KEY: SECRET,
      PORT: '0',
      HOSTNAME: '127.0.0.1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  deno.stderr?.on('data', (b: Buffer) => output.push(b.toString()));
  for await (const line of createInterface({ input: deno.stdout! })) {
    output.push(line);
    const parsed = line.startsWith('{') ? (JSON.parse(line) as { event?: string; url?: string }) : {};
    if (parsed.event === 'edge_started') {
      denoUrl = parsed.url ?? '';
      break;
    }
  }
  if (denoUrl === '') throw new Error(`the Deno edge did not start:\n${output.join('\n')}`);
}, 60_000);

afterAll(async () => {
  if (deno && deno.exitCode === null) {
    const exited = new Promise((resolve) => deno.once('exit', resolve));
    deno.kill('SIGTERM');
    await exited;
  }
  await new Promise<void>((resolve) => (gatewayServer ? gatewayServer.close(() => resolve()) : resolve()));
  rmSync(denoDir, { recursive: true, force: true });
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
    const before = memoryOf(deno.pid!);
    const answers = await Promise.all(
      Array.from({ length: 4 }, () => fetch(`${denoUrl}/v1/batch`, { method: 'POST', headers: { authorization: `Basic ${btoa(`${HOSTILE_WRITE_KEY}:`)}`, 'content-encoding': 'gzip' }, body: bomb })),
    );
    for (const res of answers) {
      expect(res.status).toBe(413);
      expect(await res.json()).toMatchObject({ error: { code: 'payload_too_large' } });
    }
    const after = memoryOf(deno.pid!);
    // Peak resident memory over the whole run so far, against the resident memory before the bombs.
    expect(after.peak - before.rss).toBeLessThan(200);
  });
});
