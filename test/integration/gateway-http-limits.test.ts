import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signGatewayRequest } from '../../schemas/gateway-signature.ts';
import { waitFor } from './setup/kafka-test-env.ts';

// Issue #10, findings 3 and 10 over real HTTP: the gateway (core/gateway/server.ts) in its own
// process, short timeouts and a small connection cap so each limit shows within seconds.
const LIMITS = { headersTimeoutMs: 1_500, requestTimeoutMs: 2_000, idleTimeoutMs: 4_000, maxConnections: 150, retryAfterS: 7 };
const EDGE = { id: 'http-edge', secret: 'gateway-http-child-secret-0123456789abcdef' };

let child: ChildProcess;
let port = 0;
const rssMb = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

beforeAll(async () => {
  child = spawn(process.execPath, ['--import', 'tsx', new URL('./fixtures/gateway-http-child.ts', import.meta.url).pathname, JSON.stringify(LIMITS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  port = await new Promise<number>((resolve, reject) => {
    child.stdout?.once('data', (d: Buffer) => resolve((JSON.parse(d.toString()) as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`the gateway exited (${code})`)));
  });
}, 60_000);

afterAll(() => {
  child?.kill();
});

interface Conn {
  socket: Socket;
  received: () => string;
  closed: () => boolean;
}

async function open(): Promise<Conn> {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  let closed = false;
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  return { socket, received: () => text, closed: () => closed };
}

/** Writes `bytes` zero bytes, waiting for drain but giving up when the gateway stops reading. */
async function send(s: Socket, bytes: number): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024);
  let left = bytes;
  while (left > 0 && !s.destroyed) {
    const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
    left -= part.length;
    if (!s.write(part)) {
      const drained = await Promise.race([new Promise<boolean>((r) => s.once('drain', () => r(true))), new Promise<boolean>((r) => setTimeout(() => r(false), 2_000))]);
      if (!drained) return;
    }
  }
}

describe('gateway HTTP limits', () => {
  it('answers 100 stalled unsigned 4 MB uploads 401 at once and closes them, without buffering their bodies', async () => {
    const before = rssMb();
    const conns = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const c = await open();
        c.socket.write(`POST /v1/partials HTTP/1.1\r\nhost: gw\r\ncontent-type: application/octet-stream\r\ncontent-length: 4000000\r\n\r\n`);
        await send(c.socket, 4_000_000 - 1);
        return c;
      }),
    );
    await waitFor(() => conns.every((c) => c.closed()), 'every stalled upload closed by the gateway', 10_000);
    expect(new Set(conns.map((c) => c.received().split('\r\n')[0]))).toEqual(new Set(['HTTP/1.1 401 Unauthorized']));
    // Before: the gateway read each body to its 4 MiB cap first (+394 MB RSS for 100 of them, docs/SECURITY.md).
    expect(rssMb() - before).toBeLessThan(100);
  });

  it('closes a signed upload that stalls after its headers at the request timeout, and one that never finishes its headers', async () => {
    const body = new Uint8Array(1000);
    const headers = await signGatewayRequest({ kind: 'partials', edgeId: EDGE.id, secret: EDGE.secret, body, timestampMs: Date.now() });
    const signed = await open();
    signed.socket.write(`POST /v1/partials HTTP/1.1\r\nhost: gw\r\ncontent-length: 1000\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
    signed.socket.write(Buffer.alloc(10));
    const slowHeaders = await open();
    slowHeaders.socket.write('POST /v1/partials HTTP/1.1\r\nhost: gw\r\n');
    const started = Date.now();
    await waitFor(() => signed.closed() && slowHeaders.closed(), 'both stalled connections closed', 15_000);
    // Node answers 408 to a request it timed out; the limits are 1.5 s and 2 s, checked every second.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(signed.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('answers a connection over the cap 503 with Retry-After, and 405 with Allow to another method', async () => {
    const idle = await Promise.all(Array.from({ length: LIMITS.maxConnections }, () => open()));
    const over = await open();
    over.socket.write('GET /health HTTP/1.1\r\nhost: gw\r\n\r\n');
    await waitFor(() => over.closed(), 'the over-cap connection answered and closed', 5_000);
    expect(over.received()).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
    expect(over.received()).toContain('retry-after: 7');
    expect(over.received()).toContain('"code":"overloaded"');
    for (const c of idle) c.socket.destroy();
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health`)).status === 200, 'capacity back', 5_000);
    const res = await fetch(`http://127.0.0.1:${port}/v1/partials`);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
  });
});
