/**
 * The chaos harness: a real pipeline on this machine (its own Kafka broker, `tributary edge` with
 * EDGE_PROCESSES processes, an aggregator host child with embedded ClickHouse or a server at
 * CLICKHOUSE_URL), SDK-like load, and a schedule of faults per round. After each round: load
 * stopped, pipeline drained, every client's ledger checked against ClickHouse (./check.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCoreConfig, type CoreConfig } from '../../core/config/core-config.ts';
import { createKafka } from '../../core/kafka/client.ts';
import { startLocalKafka, stopLocalKafka, type LocalKafkaOptions } from '../../core/kafka/local-broker.ts';
import { resolveLocalKafkaConfig } from '../../core/kafka/local-kafka-config.ts';
import { isPortFree } from '../../core/kafka/os-probes.ts';
import { ensurePipelineTopics } from '../../core/kafka/topics.ts';
import { silentLogger } from '../../core/log.ts';
import { checkLedgers, type Counted, type Violation } from './check.ts';
import { describeFault, type Fault, type FaultKind } from './faults.ts';
import { startLoad, type LoadOptions, type LoadSummary } from './load.ts';
import { AggregatorHost, EdgeProcess, sleep } from './processes.ts';

export type RoundLoad = Pick<LoadOptions, 'connections' | 'batchesPerSecond' | 'maxBatchEvents' | 'fixedBatchSize' | 'usersPerClient' | 'resendProbability'>;

export interface RoundPlan {
  /** Round number as printed and replayed (`--round R`). */
  round: number;
  scenario: string;
  loadMs: number;
  load: RoundLoad;
  faults: Fault[];
}

export interface ChaosOptions {
  seed: number;
  rounds: RoundPlan[];
  /** Edge processes of `tributary edge` (EDGE_PROCESSES). Default 2. */
  edgeProcesses?: number;
  /** A ClickHouse server instead of the embedded engine. */
  clickhouseUrl?: string;
  /** How long clients keep retrying unacknowledged batches after the load stops. Default 20 s. */
  graceMs?: number;
  /** Longest wait for the pipeline to drain after a round. Default 180 s. */
  drainTimeoutMs?: number;
  workDir?: string;
  log?: (line: string) => void;
}

export interface FaultRecord {
  fault: Fault;
  /** When it actually started and ended, from the start of the round's load. */
  startedMs: number;
  endedMs: number;
  error?: string;
}

export interface RoundReport {
  seed: number;
  round: number;
  scenario: string;
  faults: FaultRecord[];
  sentEvents: number;
  ackedEvents: number;
  countedEvents: number;
  batches: number;
  requests: number;
  retries: number;
  resends: number;
  resentEvents: number;
  statuses: Record<string, number>;
  drainMs: number;
  violations: Violation[];
}

export interface ChaosReport {
  seed: number;
  workDir: string;
  rounds: RoundReport[];
  violations: number;
}

const SITE = 'chaos';
const WRITE_KEY = 'wk_chaos';

async function freePortPair(): Promise<number> {
  for (let port = 33000 + Math.floor(Math.random() * 2000) * 2; ; port += 2) {
    if ((await isPortFree(port)) && (await isPortFree(port + 1))) return port;
  }
}

async function freePort(): Promise<number> {
  for (let port = 38000 + Math.floor(Math.random() * 4000); ; port++) if (await isPortFree(port)) return port;
}

/** The pipeline under test and the faults that can be injected into it. */
class ChaosPipeline {
  readonly broker: LocalKafkaOptions;
  readonly host: AggregatorHost;
  readonly edge: EdgeProcess;
  readonly config: CoreConfig;

  constructor(broker: LocalKafkaOptions, env: NodeJS.ProcessEnv, edgePort: number, logDir: string) {
    this.broker = broker;
    const parsed = parseCoreConfig(env);
    if (!parsed.ok) throw new Error(parsed.errors.join('; '));
    this.config = parsed.config;
    this.host = new AggregatorHost(env, logDir);
    this.edge = new EdgeProcess(env, edgePort, logDir);
  }

  get brokers(): string[] {
    return [`127.0.0.1:${this.broker.port}`];
  }

  async inject(f: Fault): Promise<void> {
    switch (f.kind) {
      case 'broker-outage':
        await stopLocalKafka(this.broker);
        await sleep(f.durationMs);
        await startLocalKafka(this.broker);
        return;
      case 'clickhouse-outage':
        await this.host.setClickHouseDown(true);
        await sleep(f.durationMs);
        await this.host.setClickHouseDown(false);
        return;
      case 'rebalance':
        await this.host.addInstance();
        await sleep(f.durationMs);
        await this.host.removeInstance();
        return;
      case 'aggregator-crash':
        await this.host.kill();
        await sleep(f.durationMs);
        await this.host.start();
        return;
      case 'edge-crash':
        if (f.target === 'worker') {
          this.edge.killOneWorker(f.atMs);
          return;
        }
        await this.edge.kill();
        await sleep(f.durationMs);
        await this.edge.start();
        return;
    }
  }

  /** After a round's faults: broker up, aggregator host up with its ClickHouse switch closed, edge up. */
  async restore(): Promise<void> {
    await startLocalKafka(this.broker);
    if (!this.host.running) await this.host.start();
    const state = await this.host.state();
    if (state.clickhouseDown) await this.host.setClickHouseDown(false);
    for (let i = state.instances; i > 1; i--) await this.host.removeInstance();
  }

  /** Consumer lag from committed offsets over every partition of the partials topic. */
  async lag(): Promise<number> {
    const admin = createKafka(this.brokers, 'chaos-lag', silentLogger()).admin();
    await admin.connect();
    try {
      const topic = this.config.topics.partials;
      const [high, [committed]] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: this.config.aggregator.groupId, topics: [topic] })]);
      let lag = 0;
      for (const p of high) {
        const c = committed?.partitions.find((x) => x.partition === p.partition)?.offset ?? '-1';
        lag += Number(BigInt(p.high) - (c === '-1' ? BigInt(p.low) : BigInt(c)));
      }
      return lag;
    } finally {
      await admin.disconnect();
    }
  }

  async counted(prefix: string): Promise<Map<string, Counted>> {
    const rows = await this.host.query<{ event: string; events: string; users: string }>({
      query: `SELECT event, toString(sum(events)) AS events, toString(tributary_hll_estimate(maxMap(users_hll))) AS users
              FROM agg_minute WHERE site = {site:String} AND startsWith(event, {prefix:String}) GROUP BY event`,
      params: { site: SITE, prefix },
    });
    return new Map(rows.map((r) => [r.event, { events: Number(r.events), users: Math.round(Number(r.users)) }]));
  }

  /** Windows since `fromMs` still provisional, and the start of the newest final (or corrected) one. */
  async windows(fromMs: number): Promise<{ provisional: number; lastFinalMs: number }> {
    const [row] = await this.host.query<{ provisional: string; last_final: string }>({
      query: `SELECT toString(countIf(s = 'provisional')) AS provisional, toString(toUnixTimestamp64Milli(maxIf(window_start, s != 'provisional'))) AS last_final
              FROM (SELECT window_start, partition, argMax(status, version) AS s FROM window_status
                    WHERE window_start >= fromUnixTimestamp64Milli({from:Int64}) GROUP BY window_start, partition)`,
      params: { from: fromMs },
    });
    return { provisional: Number(row?.provisional ?? 0), lastFinalMs: Number(row?.last_final ?? 0) };
  }
}

/** Runs the rounds on one pipeline; never throws for a violation (they are in the report). */
export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const log = o.log ?? ((line: string) => console.log(line));
  const workDir = o.workDir ?? mkdtempSync(join(tmpdir(), 'tributary-chaos-'));
  const logDir = join(workDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const runId = randomBytes(3).toString('hex');
  const broker: LocalKafkaOptions = { cacheDir: resolveLocalKafkaConfig().cacheDir, dataDir: join(workDir, 'kafka'), port: await freePortPair(), maxHeap: '512m' };
  const windowSizeMs = 10_000;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KAFKA_BROKERS: `127.0.0.1:${broker.port}`,
    PARTIALS_TOPIC: `chaos-partials-${runId}`,
    REJECTED_TOPIC: `chaos-rejected-${runId}`,
    DEAD_LETTER_TOPIC: `chaos-dlq-${runId}`,
    AGGREGATOR_GROUP: `chaos-aggregator-${runId}`,
    AGGREGATOR_SESSION_TIMEOUT_MS: '10000',
    WINDOW_SIZE_MS: String(windowSizeMs),
    ALLOWED_LATENESS_MS: '2000',
    IDLE_TIMEOUT_MS: '10000',
    EMIT_INTERVAL_MS: '1000',
    EDGE_PROCESSES: String(o.edgeProcesses ?? 2),
    TRIBUTARY_ENV: 'production',
    TRIBUTARY_WRITE_KEYS: `${WRITE_KEY}:${SITE}`,
    SALT_SOURCE: 'static',
    PSEUDONYM_SALT: `chaos-salt-${runId}-0123456789abcdef`,
    BOT_POLICY: 'keep',
    DIMENSIONS: 'path',
    HEARTBEAT_MS: '1000',
    LOG_LEVEL: 'info',
    ...(o.clickhouseUrl ? { CLICKHOUSE_URL: o.clickhouseUrl } : { CLICKHOUSE_PATH: join(workDir, 'clickhouse') }),
  };
  if (!o.clickhouseUrl) delete env.CLICKHOUSE_URL;
  delete env.PORT;

  const pipeline = new ChaosPipeline(broker, env, await freePort(), logDir);
  log(`chaos: seed ${o.seed}, ${o.rounds.length} round(s), work dir ${workDir} (logs in ${logDir})`);
  const report: ChaosReport = { seed: o.seed, workDir, rounds: [], violations: 0 };
  try {
    const started = await startLocalKafka(broker);
    log(`chaos: Kafka broker at ${started.brokers} (${started.startupMs} ms)`);
    await ensurePipelineTopics(createKafka(pipeline.brokers, 'chaos-setup', silentLogger()), pipeline.config);
    await pipeline.host.start();
    await pipeline.edge.start();
    log(`chaos: edge at ${pipeline.edge.url} (${env.EDGE_PROCESSES} processes), ClickHouse ${o.clickhouseUrl ? 'server' : 'embedded'}`);

    for (const plan of o.rounds) {
      const r = await runRound(pipeline, plan, { seed: o.seed, runId, windowSizeMs, graceMs: o.graceMs ?? 20_000, drainTimeoutMs: o.drainTimeoutMs ?? 180_000, log });
      report.rounds.push(r);
      report.violations += r.violations.length;
    }
  } finally {
    await pipeline.edge.stop().catch(() => undefined);
    await pipeline.host.stop().catch(() => undefined);
    await stopLocalKafka(broker).catch(() => undefined);
  }
  return report;
}

interface RoundContext {
  seed: number;
  runId: string;
  windowSizeMs: number;
  graceMs: number;
  drainTimeoutMs: number;
  log: (line: string) => void;
}

async function runRound(pipeline: ChaosPipeline, plan: RoundPlan, ctx: RoundContext): Promise<RoundReport> {
  const prefix = `chaos${ctx.runId}-r${plan.round}`;
  ctx.log(`\nround ${plan.round} (${plan.scenario}, seed ${ctx.seed}): ${plan.faults.length ? plan.faults.map(describeFault).join('; ') : 'no faults'}`);
  const roundStart = Date.now();
  const load = startLoad({ ...plan.load, url: pipeline.edge.url, writeKey: WRITE_KEY, eventPrefix: prefix, seed: (ctx.seed * 1000 + plan.round) >>> 0 });

  const records: FaultRecord[] = [];
  const faultTasks = plan.faults.map(async (fault) => {
    await sleep(fault.atMs);
    const record: FaultRecord = { fault, startedMs: Date.now() - roundStart, endedMs: 0 };
    records.push(record);
    try {
      await pipeline.inject(fault);
    } catch (e) {
      record.error = e instanceof Error ? e.message : String(e);
      ctx.log(`  fault ${fault.kind} failed: ${record.error}`);
    }
    record.endedMs = Date.now() - roundStart;
  });

  await sleep(plan.loadMs);
  const loadEnded = Date.now();
  const summary: LoadSummary = await load.stop(ctx.graceMs);
  await Promise.all(faultTasks);
  await pipeline.restore();
  ctx.log(`  load: ${summary.batchesSent} batches, ${summary.requests} requests (${summary.retries} retries, ${summary.resends} re-sends of acknowledged batches), statuses ${JSON.stringify(summary.statuses)}; clients stopped ${((Date.now() - loadEnded) / 1000).toFixed(1)} s after the load`);

  const drainStarted = Date.now();
  const drained = await drain(pipeline, prefix, roundStart, summary.lastEventMs, ctx);
  const drainMs = Date.now() - drainStarted;
  const counted = await pipeline.counted(prefix);
  const violations = checkLedgers(summary.ledgers, counted);
  for (const refused of summary.refusedBatches) violations.push({ kind: 'batch_refused', event: refused.event, detail: `a valid batch was refused with ${refused.status}: ${refused.body}` });
  if (!drained.ok) violations.push({ kind: 'not_drained', detail: `not drained within ${ctx.drainTimeoutMs} ms: ${drained.detail}` });

  const sum = (f: (l: LoadSummary['ledgers'][number]) => number): number => summary.ledgers.reduce((n, l) => n + f(l), 0);
  const r: RoundReport = {
    seed: ctx.seed,
    round: plan.round,
    scenario: plan.scenario,
    faults: records,
    sentEvents: sum((l) => l.sentEvents),
    ackedEvents: sum((l) => l.ackedEvents),
    countedEvents: [...counted.values()].reduce((n, c) => n + c.events, 0),
    batches: summary.batchesSent,
    requests: summary.requests,
    retries: summary.retries,
    resends: summary.resends,
    resentEvents: summary.resentEvents,
    statuses: summary.statuses,
    drainMs,
    violations,
  };
  ctx.log(`  events: sent ${r.sentEvents}, acknowledged ${r.ackedEvents}, counted ${r.countedEvents}; drained in ${(drainMs / 1000).toFixed(1)} s`);
  if (violations.length === 0) ctx.log('  OK: every acknowledged event counted once, nothing counted twice, unique users within the sketch error');
  for (const v of violations) ctx.log(`  VIOLATION ${v.kind}${v.event ? ` [${v.event}]` : ''}: ${v.detail} (seed ${ctx.seed}, round ${plan.round})`);
  return r;
}

/**
 * Drained: committed consumer lag 0 on every partition, no provisional window since the round
 * started, the window of the newest event final, and the round's counts unchanged between two
 * reads. A missing aggregator result therefore shows as a violation, not as a short wait.
 */
async function drain(pipeline: ChaosPipeline, prefix: string, roundStart: number, lastEventMs: number, ctx: RoundContext): Promise<{ ok: boolean; detail: string }> {
  const deadline = Date.now() + ctx.drainTimeoutMs;
  const lastWindow = Math.floor(lastEventMs / ctx.windowSizeMs) * ctx.windowSizeMs;
  const fromMs = Math.floor(roundStart / ctx.windowSizeMs) * ctx.windowSizeMs - ctx.windowSizeMs;
  let previous = '';
  let detail = '';
  while (Date.now() < deadline) {
    try {
      const lag = await pipeline.lag();
      const w = await pipeline.windows(fromMs);
      const counts = JSON.stringify([...(await pipeline.counted(prefix)).entries()].sort());
      detail = `lag ${lag}, provisional windows ${w.provisional}, newest final window ${new Date(w.lastFinalMs).toISOString()} (needed ${new Date(lastWindow).toISOString()})`;
      if (lag === 0 && w.provisional === 0 && w.lastFinalMs >= lastWindow && counts === previous) return { ok: true, detail };
      previous = lag === 0 ? counts : '';
    } catch (e) {
      detail = `drain check failed: ${e instanceof Error ? e.message : String(e)}`;
      previous = '';
    }
    await sleep(2000);
  }
  return { ok: false, detail };
}

/** Faults per kind over a report, for the summary and docs/RELIABILITY.md. */
export function faultsByKind(report: ChaosReport): Record<FaultKind, number> {
  const counts: Record<FaultKind, number> = { 'broker-outage': 0, 'aggregator-crash': 0, 'edge-crash': 0, rebalance: 0, 'clickhouse-outage': 0 };
  for (const r of report.rounds) for (const f of r.faults) if (!f.error) counts[f.fault.kind]++;
  return counts;
}
