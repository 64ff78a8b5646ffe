/**
 * Memory of the gateway under stalled unsigned uploads (issue #10 finding 3): opens N
 * connections, each declaring a 4,000,000-byte body and sending all of it but the last byte,
 * then stalls; reports the gateway process's RSS before and the peak while they hang. The
 * gateway is the real HTTP server with its default limits (core/gateway/server.ts) and a producer
 * that acknowledges everything, in its own process.
 *
 *   npx tsx bench/gateway/stalled-uploads.ts [connections=100]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { loadavg } from 'node:os';

const N = Number(process.argv[2] ?? 100);
const BODY = 4_000_000;
const rssMb = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const child = spawn(process.execPath, ['--import', 'tsx', new URL('../../test/integration/fixtures/gateway-http-child.ts', import.meta.url).pathname], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise<number>((resolve) => child.stdout.once('data', (d: Buffer) => resolve((JSON.parse(d.toString()) as { port: number }).port)));
const pid = child.pid as number;
await sleep(1000);
const before = rssMb(pid);
const chunk = Buffer.alloc(64 * 1024, 120);
const sockets: Socket[] = [];
let answered = 0;
let closed = 0;
let written = 0;
await Promise.all(
  Array.from({ length: N }, async () => {
    const s = connect(port, '127.0.0.1');
    sockets.push(s);
    s.on('error', () => {});
    s.on('data', () => answered++);
    s.on('close', () => closed++);
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(`POST /v1/partials HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/octet-stream\r\ncontent-length: ${BODY}\r\n\r\n`);
    let left = BODY - 1;
    while (left > 0 && !s.destroyed) {
      const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= part.length;
      if (!s.write(part)) await Promise.race([new Promise((r) => s.once('drain', r)), new Promise((r) => s.once('close', r)), sleep(5000)]);
    }
    written += BODY - 1 - left;
  }),
);
let peak = rssMb(pid);
for (let i = 0; i < 10; i++) {
  await sleep(500);
  peak = Math.max(peak, rssMb(pid));
}
console.log(JSON.stringify({ connections: N, rss_before_mb: Math.round(before), rss_peak_mb: Math.round(peak), bytes_sent_mb: Math.round(written / 1e6), answered, closed_by_gateway: closed, load: loadavg().map((l) => l.toFixed(2)) }));
for (const s of sockets) s.destroy();
child.kill();
