import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/ports.ts';
import { spawnTributary, type TributaryProcess } from '../support/tributary-process.ts';
import { testKafkaBrokers, uniqueName } from './setup/kafka-test-env.ts';

// libchdb binds a data directory to one process. The commands README lists as separate services
// refuse a CLICKHOUSE_PATH another live process has open, before they touch anything else, with
// the topologies that work (README "Processes and topologies"); a directory left by a killed
// process is taken over.

const GATEWAY_KEYS = 'workers-dev:local-dev-signing-key-0123456789abcdef';

describe('a second process on an embedded ClickHouse directory in use', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trib-embedded-in-use-'));
  const clickhousePath = join(dir, 'clickhouse');
  const cacheDir = join(dir, 'cache');
  let holder: TributaryProcess;
  let holderPid: number;

  beforeAll(async () => {
    const port = await freePort();
    // `tributary query-api` holds the directory without needing Kafka.
    holder = spawnTributary(['query-api'], { TRIBUTARY_ENV: 'dev', CLICKHOUSE_PATH: clickhousePath, QUERY_PORT: String(port), LOG_LEVEL: 'info' });
    await holder.waitForOutput(/query_api_listening/, 90_000);
    holderPid = holder.child.pid as number;
  });

  afterAll(async () => {
    if (holder.child.exitCode === null && holder.child.signalCode === null) {
      holder.kill('SIGKILL');
      await holder.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  // Side by side: each is its own process and none touches the directory.
  it.concurrent.for([
    ['aggregator', { KAFKA_BROKERS: '127.0.0.1:1' }],
    ['query-api', { TRIBUTARY_ENV: 'dev', QUERY_PORT: '18981' }],
    ['migrate', {}],
    ['gateway', { KAFKA_BROKERS: '127.0.0.1:1', GATEWAY_SIGNING_KEYS: GATEWAY_KEYS }],
    ['edge', { KAFKA_BROKERS: '127.0.0.1:1', TRIBUTARY_ENV: 'dev', PORT: '18982' }],
    // No KAFKA_BROKERS: refuses before it would start a local broker.
    ['start', { TRIBUTARY_CACHE_DIR: cacheDir, TRIBUTARY_KAFKA_PORT: '1' }],
  ] as const)('tributary %s exits 1 with the holder, the reason and what to run', async ([command, env], { expect }) => {
    const second = spawnTributary([command], { ...env, CLICKHOUSE_PATH: clickhousePath, SHUTDOWN_TIMEOUT_MS: '5000' });
    const { code } = await second.exited;
    const output = second.output();
    expect(code, output).toBe(1);
    expect(output).toContain(`The embedded ClickHouse at ${clickhousePath} is open in another process (pid ${holderPid})`);
    expect(output).toContain('`tributary start`');
    expect(output).toContain('CLICKHOUSE_URL');
    // Refused before chdb was loaded, not by chdb's own lock.
    expect(output).not.toMatch(/Cannot lock file/);
    if (command === 'start') expect(existsSync(cacheDir) ? readdirSync(cacheDir) : []).toEqual([]);
    // The holder is unharmed.
    expect(holder.child.exitCode).toBeNull();
  });

  it('a directory left by a killed process is taken over: the documented `tributary gateway` migrates it and serves', async () => {
    holder.kill('SIGKILL');
    await holder.exited;
    // docs/DEPLOY-WORKERS.md: KAFKA_BROKERS and GATEWAY_SIGNING_KEYS only (SALT_SOURCE=clickhouse,
    // the embedded store), on a store no migration has touched yet.
    const gatewayPort = await freePort();
    const gateway = spawnTributary(['gateway'], {
      KAFKA_BROKERS: testKafkaBrokers().join(','),
      GATEWAY_SIGNING_KEYS: GATEWAY_KEYS,
      GATEWAY_PORT: String(gatewayPort),
      CLICKHOUSE_PATH: clickhousePath,
      PARTIALS_TOPIC: uniqueName('partials'),
      REJECTED_TOPIC: uniqueName('rejected'),
      DEAD_LETTER_TOPIC: uniqueName('dlq'),
    });
    await gateway.waitForOutput(/gateway_listening/, 90_000);
    expect(gateway.output()).toMatch(/"event":"salt_store"/);
    expect((await fetch(`http://127.0.0.1:${gatewayPort}/health`)).status).toBe(200);
    gateway.kill('SIGTERM');
    expect((await gateway.exited).code, gateway.output()).toBe(0);
    const migrate = spawnTributary(['migrate'], { CLICKHOUSE_PATH: clickhousePath });
    const { code } = await migrate.exited;
    expect(code, migrate.output()).toBe(0);
    expect(migrate.output()).toMatch(/applied 0 migration\(s\); [1-9]\d* already applied/);
  });
});
