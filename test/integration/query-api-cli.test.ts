import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/ports.ts';

// `tributary query-api` as an operator runs it: where it listens, what it answers without a key,
// and what a failing query shows. Secrets below carry MARK, which no output may contain.
const MARK = 'SeCrEtMaRk';
const READ_KEY = `rk_${MARK}_0123456789abcdef`;
const CLI = fileURLToPath(new URL('../../bin/tributary.mjs', import.meta.url));

function baseEnv(): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(KAFKA_|CLICKHOUSE_|GATEWAY_|TRIBUTARY_|PSEUDONYM_|SALT_|QUERY_|METRICS_)/.test(k)));
}

function run(command: string, env: Record<string, string>): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [CLI, command], { env: { ...baseEnv(), LOG_LEVEL: 'debug', ...env }, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, output: `${r.stdout}\n${r.stderr}` };
}

describe('tributary query-api refuses to serve readers it cannot tell apart', () => {
  it('exits with what to set when no read key is configured outside dev', () => {
    const r = run('query-api', { CLICKHOUSE_URL: 'http://127.0.0.1:1' });
    expect(r.status).toBe(1);
    expect(r.output).toMatch(/QUERY_READ_KEYS is not set/);
  });

  it('serves dev without keys on loopback only', () => {
    const r = run('query-api', { CLICKHOUSE_URL: 'http://127.0.0.1:1', TRIBUTARY_ENV: 'dev', QUERY_HOST: '0.0.0.0', METRICS_TOKEN: 'mt_0123456789abcdef' });
    expect(r.status).toBe(1);
    expect(r.output).toMatch(/QUERY_HOST=0\.0\.0\.0 is not a loopback address/);
  });

  it.each(['start', 'aggregator', 'query-api'])('%s: bad read keys and tokens are named, never printed', (command) => {
    const r = run(command, { KAFKA_BROKERS: '127.0.0.1:1', CLICKHOUSE_URL: 'http://127.0.0.1:1', QUERY_READ_KEYS: `${READ_KEY}:shop,${MARK}nocolon`, METRICS_TOKEN: MARK, METRICS_HOST: '0.0.0.0' });
    expect(r.status).toBe(2);
    expect(r.output).toContain('QUERY_READ_KEYS entry 2');
    expect(r.output).toContain('METRICS_TOKEN is not valid');
    expect(r.output).toContain('METRICS_HOST=0.0.0.0 serves /metrics');
    expect(r.output).not.toContain(MARK);
  });
});

describe('tributary query-api, running', () => {
  let child: ChildProcess;
  let port: number;
  let output = '';
  const dir = mkdtempSync(join(tmpdir(), 'trib-query-cli-'));

  beforeAll(async () => {
    port = await freePort();
    // An embedded store that no migration has touched: every data query fails inside ClickHouse.
    child = spawn(process.execPath, [CLI, 'query-api'], {
      env: { ...baseEnv(), TRIBUTARY_ENV: 'production', CLICKHOUSE_PATH: dir, QUERY_PORT: String(port), QUERY_READ_KEYS: `${READ_KEY}:shop`, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (output += b.toString()));
    const deadline = Date.now() + 90_000;
    for (;;) {
      const up = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
      if (up) break;
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`query-api did not come up:\n${output}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('listens on loopback by default: not reachable on this machine\'s other addresses', async () => {
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    const external = Object.values(networkInterfaces()).flat().filter((n) => n !== undefined && !n.internal && n.family === 'IPv4');
    for (const n of external) await expect(fetch(`http://${n?.address}:${port}/health`), n?.address).rejects.toThrow();
  });

  it('answers 401 without the key, and a failing query with a request id and no SQL; the log has the details', async () => {
    const url = `http://127.0.0.1:${port}/api/v1/totals?site=shop&from=2025-01-01&to=2025-01-02&granularity=hour`;
    expect((await fetch(url)).status).toBe(401);
    const res = await fetch(url, { headers: { authorization: `Bearer ${READ_KEY}` } });
    expect(res.status).toBe(500);
    const id = res.headers.get('x-request-id') as string;
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ error: { code: 'internal_error', message: expect.stringContaining(id), request_id: id } });
    for (const leak of [/select/i, /window_status/, /agg_hour/, /Code: \d+/, /Exception/, /ClickHouse/]) expect(text).not.toMatch(leak);
    const deadline = Date.now() + 10_000;
    while (!output.includes(id) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const line = output.split('\n').find((l) => l.includes(id)) ?? '';
    expect(JSON.parse(line)).toMatchObject({ event: 'query_failed', request_id: id, reader: 'key 1' });
    expect(output).not.toContain(MARK);
  });
});
