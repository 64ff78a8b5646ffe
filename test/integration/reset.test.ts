import { existsSync, mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stopLocalKafka } from '../../tools/kafka-local/local-broker.ts';
import { KAFKA_VERSION, resolveLocalKafkaConfig } from '../../tools/kafka-local/local-kafka-config.ts';
import { isPortFree } from '../../core/os-probes.ts';
import { componentStatus, getHealth, spawnTributary, type TributaryProcess } from '../support/tributary-process.ts';
import { waitFor } from './setup/kafka-test-env.ts';

// Deliverable 4 of issue #9: the local broker keeps the committed offsets of an earlier run, the
// embedded ClickHouse is new (the checkpoints they name are not there). `tributary start` must
// not report "running" and acknowledge events nobody will count: it exits non-zero naming
// `tributary reset`; after `tributary reset --yes` the next start works. Everything runs on
// this file's own local broker (own cache dir with the jars linked, own port), as a user's
// `tributary start` would, without KAFKA_BROKERS.
const dir = mkdtempSync(join(tmpdir(), 'trib-reset-'));
const cacheDir = join(dir, 'cache');
mkdirSync(cacheDir);
symlinkSync(join(resolveLocalKafkaConfig().cacheDir, `kafka-${KAFKA_VERSION}`), join(cacheDir, `kafka-${KAFKA_VERSION}`));
let port = 0;
const running: TributaryProcess[] = [];

const envFor = (clickhousePath: string): Record<string, string> => ({
  TRIBUTARY_CACHE_DIR: cacheDir,
  TRIBUTARY_KAFKA_PORT: String(port),
  CLICKHOUSE_PATH: clickhousePath,
  DEDUP_DIR: join(dir, 'dedup'),
  PORT: '0',
  QUERY_PORT: '0',
  EMIT_INTERVAL_MS: '200',
  FLUSH_INTERVAL_MS: '100',
  AGGREGATOR_SESSION_TIMEOUT_MS: '10000',
  LOG_LEVEL: 'warn',
});

function run(args: string[], env: Record<string, string>): TributaryProcess {
  const p = spawnTributary(args, env);
  running.push(p);
  return p;
}

afterAll(async () => {
  for (const p of running) p.kill('SIGKILL');
  if (port) await stopLocalKafka({ cacheDir, port });
});

async function sendAndCount(edge: string, query: string, id: string): Promise<void> {
  const sentAt = new Date().toISOString();
  const res = await fetch(`${edge}/v1/track`, {
    method: 'POST',
    headers: { authorization: `Basic ${btoa('wk_demo:')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'track', event: id, userId: 'u1', messageId: id, timestamp: sentAt, sentAt }),
  });
  expect(res.status).toBe(200);
  await waitFor(async () => {
    const r = await fetch(`${query}/api/v1/totals?site=demo&event=${id}&from=now-1h&to=${Date.now() + 3_600_000}`);
    return r.status === 200 && ((await r.json()) as { totals: { count: number } }).totals.count === 1;
  }, `event ${id} counted`, 120_000);
}

async function startAndServe(env: Record<string, string>): Promise<{ p: TributaryProcess; edge: string; query: string }> {
  const p = run(['start'], env);
  const [, edge] = await p.waitForOutput(/Edge {7}: (http:\/\/\S+)/, 180_000);
  const [, query] = await p.waitForOutput(/Query API {2}: (http:\/\/\S+)/, 10_000);
  await waitFor(async () => componentStatus((await getHealth(edge!))?.body, 'aggregator') === 'running', 'the aggregator to join', 120_000);
  return { p, edge: edge!, query: query! };
}

describe('a fresh CLICKHOUSE_PATH with a broker that kept its offsets', () => {
  it('start exits non-zero naming tributary reset; after reset --yes start works', { timeout: 600_000 }, async () => {
    for (port = 34000 + Math.floor(Math.random() * 1000) * 2; !((await isPortFree(port)) && (await isPortFree(port + 1))); port += 2);
    const oldPath = join(dir, 'clickhouse-old');
    const newPath = join(dir, 'clickhouse-new');

    // An earlier run: offsets committed with checkpoints in the old ClickHouse.
    const first = await startAndServe(envFor(oldPath));
    await sendAndCount(first.edge, first.query, 'before');
    // reset refuses while a pipeline has the embedded ClickHouse open, and without --yes.
    const busy = run(['reset', '--yes'], envFor(oldPath));
    expect((await busy.exited).code).toBe(1);
    expect(busy.output()).toMatch(/is using .*clickhouse-old/);
    first.p.kill('SIGTERM');
    expect((await first.p.exited).code).toBe(0);

    // The same broker, a new ClickHouse: a state mismatch.
    const mismatched = run(['start'], envFor(newPath));
    // Bounded, so a black hole (a start that keeps running) fails here with its output.
    const exit = await Promise.race([mismatched.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 180_000))]);
    expect(exit, `tributary start kept running:\n${mismatched.output().slice(-3000)}`).toBeDefined();
    expect(exit?.code).not.toBe(0);
    expect(mismatched.output()).toContain('tributary reset --yes');
    expect(mismatched.output()).not.toMatch(/Aggregator : running/);

    const unconfirmed = run(['reset'], envFor(newPath));
    expect((await unconfirmed.exited).code).toBe(2);
    expect(unconfirmed.output()).toContain('--yes');
    const elsewhere = run(['reset', '--yes'], { ...envFor(newPath), KAFKA_BROKERS: 'kafka.example:9092' });
    expect((await elsewhere.exited).code).toBe(2);
    expect(existsSync(resolveLocalKafkaConfig({ cacheDir }).dataDir)).toBe(true);

    const reset = run(['reset', '--yes'], envFor(newPath));
    expect((await reset.exited).code).toBe(0);
    expect(reset.output()).toMatch(/Stopped the local Kafka broker/);
    expect(reset.output()).toMatch(/Removed the local Kafka data/);
    expect(existsSync(resolveLocalKafkaConfig({ cacheDir }).dataDir)).toBe(false);

    const fresh = await startAndServe(envFor(newPath));
    await sendAndCount(fresh.edge, fresh.query, 'after');
    fresh.p.kill('SIGTERM');
    expect((await fresh.p.exited).code).toBe(0);
  });
});
