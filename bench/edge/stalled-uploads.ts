/**
 * Stalled uploads against one Node edge process: how much memory they can make it hold.
 *
 *   npx tsx bench/edge/stalled-uploads.ts                 # the edge with its default limits
 *   npx tsx bench/edge/stalled-uploads.ts --no-limits     # body timeout, connection and in-flight caps out of the way (the edge before them)
 *   npx tsx bench/edge/stalled-uploads.ts --uploads 500 --kib 400
 *
 * Starts `startNodeEdge` (in-memory sinks) in a child process, opens N connections that each
 * declare a body of KiB + 1 bytes, send KiB of it and stall, then reports the edge's resident
 * memory (VmRSS from /proc) before and after, and how the uploads were answered. Linux only.
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const argValue = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};

async function serve(): Promise<void> {
  const { parseEdgeConfig } = await import('../../edge/config.ts');
  const { startNodeEdge } = await import('../../edge/node/server.ts');
  const dir = mkdtempSync(join(tmpdir(), 'tributary-stalled-'));
  const unlimited = process.argv.includes('--no-limits');
  const config = parseEdgeConfig({
    TRIBUTARY_ENV: 'dev',
    DEDUP_DIR: dir,
    ...(unlimited ? { BODY_TIMEOUT_MS: '600000', HEADERS_TIMEOUT_MS: '600000', MAX_CONNECTIONS: '1000000', MAX_INFLIGHT_BODY_BYTES: String(16 * 1024 ** 3) } : {}),
  });
  if (!config.ok) throw new Error(config.errors.join('\n'));
  const sink = { sendPartials: async () => undefined, sendRejected: async () => undefined };
  const edge = await startNodeEdge({ config: config.config, brokers: [], port: 0, hostname: '127.0.0.1', sink, log: () => undefined });
  process.send?.({ url: edge.url });
  process.on('disconnect', () => {
    void edge.close().finally(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
  });
}

const rssMb = (pid: number): number => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const uploads = argValue('--uploads', 1000);
  const kib = argValue('--kib', 400);
  const child = fork(fileURLToPath(import.meta.url), ['serve', ...process.argv.slice(2)], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  const url = await new Promise<string>((resolve) => child.once('message', (m: { url: string }) => resolve(m.url)));
  const port = Number(new URL(url).port);
  await sleep(1000);
  const before = rssMb(child.pid!);

  const body = Buffer.alloc(kib * 1024, 0x20);
  const answers = new Map<string, number>();
  const sockets: Socket[] = [];
  await Promise.all(
    Array.from({ length: uploads }, () => new Promise<void>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.write(`POST /v1/batch HTTP/1.1\r\nhost: edge\r\nauthorization: Basic ${btoa('wk_demo:')}\r\ncontent-type: application/json\r\ncontent-length: ${body.byteLength + 1}\r\n\r\n`);
        s.write(body, () => resolve());
      });
      let seen = '';
      s.on('data', (d: Buffer) => {
        if (seen !== '') return;
        seen = d.toString('latin1').split('\r\n')[0] ?? '?';
        answers.set(seen, (answers.get(seen) ?? 0) + 1);
      });
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      sockets.push(s);
    })),
  );
  await sleep(3000);
  const after = rssMb(child.pid!);
  console.log(JSON.stringify({
    uploads,
    kib,
    limits: process.argv.includes('--no-limits') ? 'none' : 'defaults',
    rss_before_mb: Math.round(before),
    rss_after_mb: Math.round(after),
    answered: Object.fromEntries(answers),
    unanswered: uploads - [...answers.values()].reduce((a, b) => a + b, 0),
    load: loadavg().map((l) => l.toFixed(2)).join(' '),
  }));
  for (const s of sockets) s.destroy();
  child.disconnect();
}

if (process.argv[2] === 'serve') void serve();
else void main();
