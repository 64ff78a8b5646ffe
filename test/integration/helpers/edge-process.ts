import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { testKafkaBrokers, uniqueName } from '../setup/kafka-test-env.ts';

/** A Node edge in a process of its own (../fixtures/edge-process.ts), listening. */
export interface EdgeProcess {
  child: ChildProcess;
  url: string;
  /** Resolves with `[code, signal]` once the process has exited. */
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  /** Its stderr so far (the edge's log lines but `flushed`). */
  stderr(): string;
}

/**
 * Starts ../fixtures/edge-process.ts on the run's Kafka broker, flushing every 100 ms with
 * dimension `path`, and resolves once it listens; `env` adds to or overrides that configuration.
 * `onSpawn` gets the child before it is ready, so that a caller can always clean it up.
 */
export async function startEdgeProcess(o: {
  writeKeys: string;
  dedupDir: string;
  topics: { partials: string; rejected: string };
  env?: Record<string, string>;
  onSpawn?: (child: ChildProcess) => void;
}): Promise<EdgeProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../fixtures/edge-process.ts')], {
    cwd: join(import.meta.dirname, '../../..'),
    env: {
      PATH: process.env.PATH ?? '',
      TRIBUTARY_WRITE_KEYS: o.writeKeys,
      PSEUDONYM_SALT: 'integration-salt-0123456789',
      FLUSH_INTERVAL_MS: '100',
      HEARTBEAT_MS: '200',
      DIMENSIONS: 'path',
      DEDUP_DIR: o.dedupDir,
      KAFKA_BROKERS: testKafkaBrokers().join(','),
      PARTIALS_TOPIC: o.topics.partials,
      REJECTED_TOPIC: o.topics.rejected,
      ...o.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  o.onSpawn?.(child);
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => void (stderr += b.toString()));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  const first = await Promise.race([lines.next(), exited.then(() => undefined)]);
  if (first === undefined || first.done) throw new Error(`the edge process exited before listening:\n${stderr}`);
  return { child, url: (JSON.parse(first.value) as { url: string }).url, exited, stderr: () => stderr };
}

const agent = new Agent({ keepAlive: false });

/** POST /v1/batch with `writeKey`, on a fresh connection; the status and JSON answer (or the socket error). */
export function postBatch(url: string, writeKey: string, batch: unknown[]): Promise<{ status: number; body: Record<string, unknown> } | { error: string }> {
  return new Promise((resolve) => {
    const req = request(`${url}/v1/batch`, { method: 'POST', agent, headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` } }, (res) => {
      let text = '';
      res.on('data', (b: Buffer) => void (text += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text || '{}') as Record<string, unknown> }));
    });
    req.on('error', (e) => resolve({ error: e.message }));
    req.end(JSON.stringify({ batch }));
  });
}

/** `n` track events named `<prefix>-<i>` with unique messageIds, on `path(i)`. */
export function trackEvents(prefix: string, n: number, path: (i: number) => string): unknown[] {
  return Array.from({ length: n }, (_, i) => ({ type: 'track', event: `${prefix}-${i}`, userId: `u${i}`, messageId: `${prefix}-${i}-${uniqueName('m')}`, timestamp: new Date().toISOString(), properties: { path: path(i) } }));
}
