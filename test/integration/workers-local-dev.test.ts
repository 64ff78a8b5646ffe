import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/ports.ts';
import { spawnTributary, type TributaryProcess } from '../support/tributary-process.ts';
import { testKafkaBrokers, uniqueName, waitFor } from './setup/kafka-test-env.ts';

// docs/DEPLOY-WORKERS.md "Locally", step by step: `tributary start` (aggregator, query API,
// embedded ClickHouse), `SALT_SOURCE=static tributary gateway`, `wrangler dev` with the signing
// key as a secret; events sent to the Workers edge are counted in ClickHouse through gateway →
// Kafka → aggregator. Differences from the doc, so runs never clash: the run's Kafka broker and
// unique topics, free ports (wrangler's --var GATEWAY_URL, which the doc names for another
// gateway port), and the secret in a temporary --env-file instead of the checkout's .dev.vars.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler');
const SIGNING_KEY = 'local-dev-signing-key-0123456789abcdef';

async function getJson(url: string): Promise<unknown> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return res.ok ? await res.json() : undefined;
  } catch {
    return undefined;
  }
}

describe('the Workers edge in local development (wrangler dev → gateway → Kafka → aggregator → ClickHouse)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trib-workers-dev-'));
  const topics = { PARTIALS_TOPIC: uniqueName('partials'), REJECTED_TOPIC: uniqueName('rejected'), DEAD_LETTER_TOPIC: uniqueName('dlq') };
  let start: TributaryProcess;
  let gateway: TributaryProcess;
  let wrangler: ChildProcess;
  let wranglerOutput = '';
  let queryUrl: string;
  let workerUrl: string;

  beforeAll(async () => {
    const [edgePort, queryPort, gatewayPort, workerPort, inspectorPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const brokers = testKafkaBrokers().join(',');
    queryUrl = `http://127.0.0.1:${queryPort}`;
    workerUrl = `http://127.0.0.1:${workerPort}`;
    start = spawnTributary(['start'], {
      ...topics,
      KAFKA_BROKERS: brokers,
      AGGREGATOR_GROUP: uniqueName('aggregator'),
      CLICKHOUSE_PATH: join(dir, 'clickhouse'),
      DEDUP_DIR: join(dir, 'dedup'),
      PORT: String(edgePort),
      QUERY_PORT: String(queryPort),
      EMIT_INTERVAL_MS: '500',
    });
    gateway = spawnTributary(['gateway'], { ...topics, KAFKA_BROKERS: brokers, SALT_SOURCE: 'static', GATEWAY_SIGNING_KEYS: `workers-dev:${SIGNING_KEY}`, GATEWAY_PORT: String(gatewayPort) });
    const devVars = join(dir, 'dev.vars');
    writeFileSync(devVars, `GATEWAY_SIGNING_KEY=${SIGNING_KEY}\n`);
    wrangler = spawn(
      WRANGLER,
      ['dev', '--ip', '127.0.0.1', '--port', String(workerPort), '--inspector-port', String(inspectorPort), '--persist-to', join(dir, 'wrangler-state'), '--env-file', devVars, '--var', `GATEWAY_URL:http://127.0.0.1:${gatewayPort}`, '--show-interactive-dev-session=false'],
      { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: '1' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    wrangler.stdout?.on('data', (b: Buffer) => (wranglerOutput += b.toString()));
    wrangler.stderr?.on('data', (b: Buffer) => (wranglerOutput += b.toString()));
    await Promise.all([
      start.waitForOutput(/Aggregator : running/, 90_000),
      gateway.waitForOutput(/gateway_listening/, 90_000),
      waitFor(async () => (await getJson(`${workerUrl}/health`)) !== undefined, `wrangler dev on ${workerUrl}:\n${wranglerOutput}`, 90_000),
    ]);
  });

  afterAll(async () => {
    if (wrangler?.pid !== undefined && wrangler.exitCode === null) {
      const exited = new Promise((resolve) => wrangler.once('exit', resolve));
      process.kill(-wrangler.pid, 'SIGTERM'); // wrangler and the workerd it started
      await exited;
    }
    for (const p of [gateway, start]) {
      if (p && p.child.exitCode === null) {
        p.kill('SIGTERM');
        await p.exited;
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts events sent to the Worker in ClickHouse, under country US (wrangler\'s placeholder request.cf)', async () => {
    const event = uniqueName('workers_dev');
    const batch = Array.from({ length: 25 }, (_, i) => ({ type: 'track', event, userId: `u${i % 5}`, messageId: `${event}-${i}`, properties: { value: i } }));
    const res = await fetch(`${workerUrl}/v1/batch`, {
      method: 'POST',
      headers: { authorization: `Basic ${btoa('wk_demo:')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ batch }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    // The doc's read step: the query API of `tributary start`.
    const totalsUrl = `${queryUrl}/api/v1/totals?site=demo&event=${event}&from=now-1h&metrics=count,uniques,sum`;
    let totals: { count: number; uniques: number; sum: number } | undefined;
    await waitFor(async () => {
      totals = ((await getJson(totalsUrl)) as { totals?: typeof totals } | undefined)?.totals;
      return totals?.count === 25;
    }, `25 events in the query API's totals (last: ${JSON.stringify(totals)}); gateway:\n${gateway.output().slice(-2000)}`, 60_000);
    expect(totals).toMatchObject({ count: 25, uniques: 5, sum: 300 });
    const breakdown = (await getJson(`${queryUrl}/api/v1/breakdown?site=demo&event=${event}&from=now-1h&by=country`)) as { rows: { value: string | null; count: number }[] };
    expect(breakdown.rows).toEqual([expect.objectContaining({ value: 'US', count: 25 })]);
  });
});
