/**
 * `npm run measure:restart`: SIGKILL `tributary start` under a small steady load, restart it at
 * once, and measure
 *   - the ingest outage: first failed request after the kill → first 200 after the restart;
 *   - the time until results are current again: restart → the query API counts every event
 *     acknowledged up to CURRENT_SLACK_MS earlier (the edge flush and the aggregator's epoch);
 *   - the aggregator's rejoin: restart → `/health` says `aggregator: running`.
 *
 * Runs its own local broker on a free port with its own data dir (jars from the usual cache),
 * or uses KAFKA_BROKERS when set; embedded ClickHouse in a temp dir. Nothing else is touched.
 *
 * Settings (environment): MEASURE_WARMUP_S (load before the kill, default 10),
 * MEASURE_WORKERS (concurrent clients, default 2), MEASURE_BATCH (events per request, default
 * 10), MEASURE_TIMEOUT_S (give up waiting for results, default 180), AGGREGATOR_SESSION_TIMEOUT_MS.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalKafka, stopLocalKafka, type LocalKafkaOptions } from '../tools/kafka-local/local-broker.ts';
import { isPortFree } from '../core/os-probes.ts';
import { componentStatus, getHealth, spawnTributary, type TributaryProcess } from '../test/support/tributary-process.ts';

const env = process.env;
const WARMUP_S = Number(env.MEASURE_WARMUP_S ?? 10);
const WORKERS = Number(env.MEASURE_WORKERS ?? 2);
const BATCH = Number(env.MEASURE_BATCH ?? 10);
const TIMEOUT_S = Number(env.MEASURE_TIMEOUT_S ?? 180);
const CURRENT_SLACK_MS = 3000;

async function freePort(from: number, pair = false): Promise<number> {
  for (let port = from + Math.floor(Math.random() * 1000) * 2; ; port += 2) {
    if ((await isPortFree(port)) && (!pair || (await isPortFree(port + 1)))) return port;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Attempt {
  at: number;
  ok: boolean;
  events: number;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'trib-measure-restart-'));
  let broker: LocalKafkaOptions | undefined;
  let brokers = env.KAFKA_BROKERS;
  if (!brokers) {
    broker = { dataDir: join(dir, 'kafka'), port: await freePort(33000, true) };
    brokers = (await startLocalKafka(broker)).brokers;
  }
  const edgePort = await freePort(36000);
  const queryPort = await freePort(38000);
  const childEnv = {
    KAFKA_BROKERS: brokers,
    CLICKHOUSE_PATH: join(dir, 'clickhouse'),
    DEDUP_DIR: join(dir, 'dedup'),
    PORT: String(edgePort),
    QUERY_PORT: String(queryPort),
    LOG_LEVEL: 'warn',
    ...(env.AGGREGATOR_SESSION_TIMEOUT_MS ? { AGGREGATOR_SESSION_TIMEOUT_MS: env.AGGREGATOR_SESSION_TIMEOUT_MS } : {}),
  };
  const edge = `http://127.0.0.1:${edgePort}`;
  const query = `http://127.0.0.1:${queryPort}`;
  const processes: TributaryProcess[] = [];
  const start = async (): Promise<TributaryProcess> => {
    const p = spawnTributary(['start'], childEnv);
    processes.push(p);
    return p;
  };

  try {
    const first = await start();
    await first.waitForOutput(/accepting events/, 180_000);
    await waitUntil(async () => componentStatus((await getHealth(edge))?.body, 'aggregator') === 'running', 180_000);

    // Steady load: WORKERS clients, each sending BATCH events per request, one request at a time.
    const attempts: Attempt[] = [];
    let next = 0;
    let loading = true;
    const sentAt = (): string => new Date().toISOString();
    const client = async (): Promise<void> => {
      while (loading) {
        const from = next;
        next += BATCH;
        const ts = sentAt();
        const batch = Array.from({ length: BATCH }, (_, i) => ({ type: 'track', event: 'restart', userId: `u${(from + i) % 500}`, messageId: `m-${from + i}`, timestamp: ts }));
        let ok = false;
        try {
          const res = await fetch(`${edge}/v1/batch`, {
            method: 'POST',
            headers: { authorization: `Basic ${btoa('wk_demo:')}`, 'content-type': 'application/json' },
            body: JSON.stringify({ batch, sentAt: ts }),
            signal: AbortSignal.timeout(5000),
          });
          ok = res.status === 200;
          await res.arrayBuffer();
        } catch {
          ok = false;
        }
        attempts.push({ at: Date.now(), ok, events: BATCH });
        await sleep(ok ? 50 : 100);
      }
    };
    const clients = Array.from({ length: WORKERS }, () => client());
    await sleep(WARMUP_S * 1000);

    const killedAt = Date.now();
    first.kill('SIGKILL');
    await first.exited;
    const restartedAt = Date.now();
    const second = await start();
    await second.waitForOutput(/accepting events/, 180_000);
    const bannerAt = Date.now();

    let joinedAt: number | undefined;
    let currentAt: number | undefined;
    const deadline = Date.now() + TIMEOUT_S * 1000;
    while (Date.now() < deadline && (joinedAt === undefined || currentAt === undefined)) {
      const now = Date.now();
      if (joinedAt === undefined && componentStatus((await getHealth(edge))?.body, 'aggregator') === 'running') joinedAt = now;
      const firstOkAfter = attempts.find((a) => a.at > restartedAt && a.ok);
      if (currentAt === undefined && firstOkAfter) {
        const acked = attempts.filter((a) => a.ok && a.at <= now - CURRENT_SLACK_MS).reduce((n, a) => n + a.events, 0);
        // Only once the window reaches past the restart does "current" say something.
        if (now - CURRENT_SLACK_MS > firstOkAfter.at && (await counted(query)) >= acked) currentAt = now;
      }
      await sleep(250);
    }
    loading = false;
    await Promise.all(clients);

    const firstFailure = attempts.find((a) => a.at >= killedAt && !a.ok);
    const firstOk = attempts.find((a) => a.at > restartedAt && a.ok);
    const acked = attempts.filter((a) => a.ok).reduce((n, a) => n + a.events, 0);
    await waitUntil(async () => (await counted(query)) >= acked, 120_000).catch(() => undefined);
    const total = await counted(query);
    const result = {
      date: new Date().toISOString(),
      brokers,
      session_timeout_ms: Number(env.AGGREGATOR_SESSION_TIMEOUT_MS ?? 30000),
      workers: WORKERS,
      batch: BATCH,
      requests: attempts.length,
      failed_requests: attempts.filter((a) => !a.ok).length,
      acknowledged_events: acked,
      counted_events: total,
      ingest_outage_ms: firstFailure && firstOk ? firstOk.at - firstFailure.at : null,
      restart_to_banner_ms: bannerAt - restartedAt,
      restart_to_aggregator_running_ms: joinedAt === undefined ? null : joinedAt - restartedAt,
      restart_to_results_current_ms: currentAt === undefined ? null : currentAt - restartedAt,
    };
    console.log(JSON.stringify(result, null, 2));
    console.log(
      `\ningest outage ${fmt(result.ingest_outage_ms)} (first failed request after the SIGKILL to the first 200 after the restart); ` +
        `banner after ${fmt(result.restart_to_banner_ms)}; aggregator running after ${fmt(result.restart_to_aggregator_running_ms)}; ` +
        `results current after ${fmt(result.restart_to_results_current_ms)}; ${acked} events acknowledged, ${total} counted`,
    );
    // A request cut off by the SIGKILL may have reached Kafka without its 200: counted at most once.
    const sent = attempts.reduce((n, a) => n + a.events, 0);
    process.exitCode = total >= acked && total <= sent ? 0 : 1;
    if (process.exitCode !== 0) console.error(`counted ${total} events: ${acked} were acknowledged, ${sent} sent`);
    second.kill('SIGTERM');
    await second.exited;
  } finally {
    for (const p of processes) p.kill('SIGKILL');
    if (broker) await stopLocalKafka(broker);
  }
}

const fmt = (ms: number | null): string => (ms === null ? 'n/a' : `${(ms / 1000).toFixed(2)} s`);

async function counted(query: string): Promise<number> {
  try {
    const res = await fetch(`${query}/api/v1/totals?site=demo&event=restart&from=now-1h&to=${Date.now() + 3_600_000}`, { signal: AbortSignal.timeout(5000) });
    if (res.status !== 200) return -1;
    return ((await res.json()) as { totals: { count: number } }).totals.count;
  } catch {
    return -1;
  }
}

async function waitUntil(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await sleep(250);
  }
}

await main();
