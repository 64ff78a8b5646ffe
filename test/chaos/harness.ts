/**
 * The chaos harness: a real pipeline on this machine (its own Kafka broker, `tributary edge` with
 * EDGE_PROCESSES processes, an aggregator host child with embedded ClickHouse or a server at
 * CLICKHOUSE_URL), SDK-like load, and a schedule of faults per round. After each round: load
 * stopped, pipeline drained, every client's ledger checked against ClickHouse (./check.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCoreConfig, type CoreConfig } from '../../core/config/core-config.ts';
import { createKafka } from '../../core/kafka/client.ts';
import { startLocalKafka, stopLocalKafka, type LocalKafkaOptions } from '../../tools/kafka-local/local-broker.ts';
import { resolveLocalKafkaConfig } from '../../tools/kafka-local/local-kafka-config.ts';
import { isPortFree } from '../../core/os-probes.ts';
import { ensurePipelineTopics } from '../../core/kafka/topics.ts';
import { silentLogger } from '../../core/log.ts';
import { decodeEnvelope } from '../../shared/algebra/index.ts';
import { checkLedgers, type Counted, type Violation } from './check.ts';
import { describeFault, targetOf, type Fault, type FaultKind, type FaultTarget } from './faults.ts';
import { startLoad, type LoadOptions, type LoadSummary } from './load.ts';
import { AggregatorHost, EdgeProcess, sleep } from './processes.ts';

export type RoundLoad = Pick<LoadOptions, 'connections' | 'batchesPerSecond' | 'maxBatchEvents' | 'fixedBatchSize' | 'usersPerClient' | 'resendProbability'>;

export interface RoundPlan {
  /** Round number as printed and replayed (`--round R`). */
  round: number;
  scenario: string;
  loadMs: number;
  /**
   * The load also runs at least this long after the last fault has ended (a broker restart can
   * take 10 s or more on a busy machine), so traffic meets the recovered pipeline. Default 5 s.
   */
  loadAfterFaultsMs?: number;
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
  /** Keep the work directory (data, logs) after a run without violations; one with violations is always kept. */
  keepWorkDir?: boolean;
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
  /** Repairs the harness made that the pipeline did not make itself (not violations of the invariant). */
  notes: string[];
  /**
   * A round that did not drain in time is checked again at the end of the run: whether its
   * shortfall was a delay (everything counted later) or a loss.
   */
  recheck?: string;
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

  readonly edgeProcesses: number;

  constructor(broker: LocalKafkaOptions, env: NodeJS.ProcessEnv, edgePort: number, logDir: string) {
    this.broker = broker;
    this.edgeProcesses = Number(env.EDGE_PROCESSES ?? '1');
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
      case 'rebalance': {
        // An instance that cannot reach the broker (an overlapping broker outage) fails to start; a supervisor retries.
        const failures: string[] = [];
        for (;;) {
          try {
            await this.host.addInstance();
            break;
          } catch (e) {
            failures.push(e instanceof Error ? e.message : String(e));
            if (failures.length >= 30) throw e;
            await sleep(2000);
          }
        }
        this.noteFailedStarts('second aggregator instance', failures);
        await sleep(f.durationMs);
        await this.host.removeInstance();
        return;
      }
      case 'aggregator-crash':
        await this.host.kill();
        await sleep(f.durationMs);
        this.noteFailedStarts('aggregator host', await this.host.start());
        return;
      case 'edge-crash':
        if (f.target === 'worker') {
          this.edge.killOneWorker(f.atMs);
          return;
        }
        await this.edge.kill();
        await sleep(f.durationMs);
        this.noteFailedStarts('edge', await this.edge.start());
        return;
    }
  }

  /** What the pipeline did not repair itself (a supervisor had to), for the round's notes. */
  readonly pendingNotes: string[] = [];

  private noteFailedStarts(what: string, failures: string[]): void {
    if (failures.length) this.pendingNotes.push(`${what} needed ${failures.length + 1} start attempts (a supervisor restarts it): ${failures[0]}`);
  }

  /**
   * After a round's faults: broker up, aggregator host up with its ClickHouse switch closed, edge
   * up with all its processes. Returns what had to be repaired that the pipeline did not repair itself.
   */
  async restore(): Promise<string[]> {
    await startLocalKafka(this.broker);
    if (!this.host.running) this.noteFailedStarts('aggregator host', await this.host.start());
    if (!this.edge.running) this.noteFailedStarts('edge', await this.edge.start());
    const notes = this.pendingNotes.splice(0);
    const state = await this.host.state();
    if (state.clickhouseDown) await this.host.setClickHouseDown(false);
    for (let i = state.instances; i > 1; i--) await this.host.removeInstance();
    if (this.edgeProcesses > 1) {
      // The primary replaces a dead worker after 1 s; give it a few seconds before calling it stuck.
      for (let i = 0; i < 25 && this.edge.workerCount() < this.edgeProcesses; i++) await sleep(200);
      const workers = this.edge.workerCount();
      if (workers < this.edgeProcesses) {
        notes.push(`the edge ran with ${workers} of ${this.edgeProcesses} worker processes (a replaced worker failed to start; see edge.log): edge restarted`);
        await this.edge.kill();
        this.noteFailedStarts('edge', await this.edge.start());
      }
    }
    return [...notes, ...this.pendingNotes.splice(0)];
  }

  /** Per partition of the partials topic: the log end offset and the group's committed offset (-1: none). */
  async offsets(): Promise<Array<{ partition: number; high: bigint; committed: bigint }>> {
    const admin = createKafka(this.brokers, 'chaos-lag', silentLogger()).admin();
    await admin.connect();
    try {
      const topic = this.config.topics.partials;
      const [high, [committed]] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: this.config.aggregator.groupId, topics: [topic] })]);
      return high.map((p) => ({ partition: p.partition, high: BigInt(p.high), committed: BigInt(committed?.partitions.find((x) => x.partition === p.partition)?.offset ?? '-1') }));
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

  /**
   * What Kafka holds per event name (envelopes deduplicated by source and sequence, as the
   * aggregator does): tells a loss between the edge and Kafka from one between Kafka and ClickHouse.
   */
  async kafkaCounts(prefix: string): Promise<Map<string, number>> {
    const kafka = createKafka(this.brokers, 'chaos-audit', silentLogger());
    const admin = kafka.admin();
    await admin.connect();
    const topic = this.config.topics.partials;
    const high = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]));
    await admin.disconnect();
    const counts = new Map<string, number>();
    const seen = new Set<string>();
    const done = new Set([...high].filter(([, h]) => h === 0n).map(([p]) => p));
    if (done.size === high.size) return counts;
    const consumer = kafka.consumer({ groupId: `chaos-audit-${randomBytes(4).toString('hex')}`, maxWaitTimeInMs: 200 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('reading the partials topic took longer than 120 s')), 120_000);
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            const decoded = decodeEnvelope(new Uint8Array(message.value ?? Buffer.alloc(0)));
            if (decoded.ok && !seen.has(`${decoded.value.sourceId}/${decoded.value.sequence}`)) {
              seen.add(`${decoded.value.sourceId}/${decoded.value.sequence}`);
              for (const row of decoded.value.rows) if (row.event.startsWith(prefix)) counts.set(row.event, (counts.get(row.event) ?? 0) + row.partial.count);
            }
            if (BigInt(message.offset) + 1n >= (high.get(partition) ?? 0n)) done.add(partition);
            if (done.size === high.size) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    }).finally(() => consumer.disconnect());
    return counts;
  }

  /**
   * Checkpoints that share (partition, epoch) with different next offsets. Under epoch-numbered
   * insert tokens this is the loss of issue 9, finding 1; with tokens derived from the checkpoint
   * id it is harmless, and printed only as context.
   */
  async reusedEpochs(): Promise<string[]> {
    const rows = await this.host.query<{ partition: number; epoch: string; offsets: string[] }>({
      query: `SELECT partition, toString(epoch) AS epoch, groupUniqArray(next_offset) AS offsets FROM aggregator_checkpoints
              WHERE group_id = {group:String} GROUP BY partition, epoch HAVING length(offsets) > 1 ORDER BY partition, epoch LIMIT 20`,
      params: { group: this.config.aggregator.groupId },
    });
    return rows.map((r) => `partition ${r.partition} epoch ${r.epoch}: next offsets ${r.offsets.join(' and ')}`);
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
    // The edge's retry-dedup store (where the edge has one): kept across edge restarts, shared by its processes.
    DEDUP_DIR: join(workDir, 'dedup'),
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
  // Interrupted (Ctrl-C): the edge's process group and the broker are detached, take them down too.
  const interrupted = (): void => {
    void Promise.allSettled([pipeline.edge.kill(), pipeline.host.kill(), stopLocalKafka(broker)]).then(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    const started = await startLocalKafka(broker);
    log(`chaos: Kafka broker at ${started.brokers} (${started.startupMs} ms)`);
    await ensurePipelineTopics(createKafka(pipeline.brokers, 'chaos-setup', silentLogger()), pipeline.config);
    // Independent of each other (each needs only the broker): started side by side.
    await Promise.all([pipeline.host.start(), pipeline.edge.start()]);
    log(`chaos: edge at ${pipeline.edge.url} (${env.EDGE_PROCESSES} processes), ClickHouse ${o.clickhouseUrl ? 'server' : 'embedded'}`);

    for (const plan of o.rounds) {
      let r: RoundReport;
      try {
        r = await runRound(pipeline, plan, { seed: o.seed, runId, windowSizeMs, graceMs: o.graceMs ?? 20_000, drainTimeoutMs: o.drainTimeoutMs ?? 180_000, log });
      } catch (e) {
        // The pipeline could not be brought back (e.g. a process that no longer starts): the run ends here, reported.
        const detail = `the pipeline could not be restored after round ${plan.round}: ${e instanceof Error ? e.message : String(e)}`;
        log(`  VIOLATION pipeline_unrecoverable: ${detail} (seed ${o.seed}, round ${plan.round})`);
        r = { seed: o.seed, round: plan.round, scenario: plan.scenario, faults: [], sentEvents: 0, ackedEvents: 0, countedEvents: 0, batches: 0, requests: 0, retries: 0, resends: 0, resentEvents: 0, statuses: {}, drainMs: 0, notes: [], violations: [{ kind: 'pipeline_unrecoverable', detail }] };
        report.rounds.push(r);
        report.violations += 1;
        break;
      }
      report.rounds.push(r);
      report.violations += r.violations.length;
    }
    await recheckStalledRounds(pipeline, report, log);
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await pipeline.edge.stop().catch(() => undefined);
    await pipeline.host.stop().catch(() => undefined);
    await stopLocalKafka(broker).catch(() => undefined);
  }
  if (report.violations === 0 && !o.keepWorkDir && !o.workDir) rmSync(workDir, { recursive: true, force: true });
  else log(`chaos: data and logs kept in ${workDir}`);
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

const ledgersOfRound = new Map<number, { prefix: string; ledgers: LoadSummary['ledgers'] }>();

/** Rounds that did not drain in time, counted again once the last round has drained: delayed or lost? */
async function recheckStalledRounds(pipeline: ChaosPipeline, report: ChaosReport, log: (line: string) => void): Promise<void> {
  for (const r of report.rounds) {
    const round = ledgersOfRound.get(r.round);
    if (!round || !r.violations.some((v) => v.kind === 'not_drained')) continue;
    const counted = await pipeline.counted(round.prefix);
    const still = checkLedgers(round.ledgers, counted).filter((v) => v.kind === 'acknowledged_lost' || v.kind === 'counted_twice');
    const total = [...counted.values()].reduce((n, c) => n + c.events, 0);
    r.recheck = still.length === 0
      ? `at the end of the run every acknowledged event of round ${r.round} is counted once (counted ${total}): its shortfall was a stall, not a loss`
      : `at the end of the run round ${r.round} still has ${still.length} count violation(s) (counted ${total}): ${still.map((v) => `${v.kind} ${v.event ?? ''}`).join(', ')}`;
    log(`recheck: ${r.recheck}`);
  }
}

async function runRound(pipeline: ChaosPipeline, plan: RoundPlan, ctx: RoundContext): Promise<RoundReport> {
  const eventPrefix = `chaos${ctx.runId}-r${plan.round}`;
  // Every event name of the round starts with this, and no name of another round does (r1-c… vs r10-c…).
  const prefix = `${eventPrefix}-c`;
  ctx.log(`\nround ${plan.round} (${plan.scenario}, seed ${ctx.seed}): ${plan.faults.length ? plan.faults.map(describeFault).join('; ') : 'no faults'}`);
  const roundStart = Date.now();
  const load = startLoad({ ...plan.load, url: pipeline.edge.url, writeKey: WRITE_KEY, eventPrefix, seed: (ctx.seed * 1000 + plan.round) >>> 0 });

  const records: FaultRecord[] = [];
  // Faults on one target run one after another even when a restart takes longer than planned.
  const queues = new Map<FaultTarget, Promise<void>>();
  const faultTasks = plan.faults.map((fault) => {
    const target = targetOf(fault.kind);
    const task = (queues.get(target) ?? Promise.resolve()).then(async () => {
      await sleep(roundStart + fault.atMs - Date.now());
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
    queues.set(target, task);
    return task;
  });

  await Promise.all([sleep(plan.loadMs), Promise.all(faultTasks).then(() => sleep(plan.loadAfterFaultsMs ?? 5_000))]);
  const loadEnded = Date.now();
  const summary: LoadSummary = await load.stop(ctx.graceMs);
  ctx.log(`  faults ran: ${records.map((f) => `${f.fault.kind} ${(f.startedMs / 1000).toFixed(1)}–${(f.endedMs / 1000).toFixed(1)} s${f.error ? ' (failed)' : ''}`).join(', ') || 'none'}; load ran ${((loadEnded - roundStart) / 1000).toFixed(1)} s`);
  const notes = await pipeline.restore();
  for (const note of notes) ctx.log(`  note: ${note}`);
  ctx.log(`  load: ${summary.batchesSent} batches, ${summary.requests} requests (${summary.retries} retries, ${summary.resends} re-sends of acknowledged batches), statuses ${JSON.stringify(summary.statuses)}; clients stopped ${((Date.now() - loadEnded) / 1000).toFixed(1)} s after the load`);

  const drainStarted = Date.now();
  const drained = await drain(pipeline, prefix, roundStart, summary.lastEventMs, ctx);
  const drainMs = Date.now() - drainStarted;
  const counted = await pipeline.counted(prefix);
  ledgersOfRound.set(plan.round, { prefix, ledgers: summary.ledgers });
  const violations = checkLedgers(summary.ledgers, counted);
  // A process that stopped by itself (a fatal aggregator error) failed loudly rather than silently, but it is still a failure of the round.
  for (const exit of [...pipeline.host.takeUnexpectedExits(), ...pipeline.edge.takeUnexpectedExits(), ...pipeline.edge.takeWorkerCrashes()]) violations.push({ kind: 'process_exited', detail: exit });
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
    notes,
    violations,
  };
  ctx.log(`  events: sent ${r.sentEvents}, acknowledged ${r.ackedEvents}, counted ${r.countedEvents}; drained in ${(drainMs / 1000).toFixed(1)} s`);
  if (violations.length > 0) await diagnose(pipeline, prefix, summary, counted, ctx);
  if (violations.length === 0) ctx.log('  OK: every acknowledged event counted once, nothing counted twice, unique users within the sketch error');
  for (const v of violations) ctx.log(`  VIOLATION ${v.kind}${v.event ? ` [${v.event}]` : ''}: ${v.detail} (seed ${ctx.seed}, round ${plan.round})`);
  return r;
}

/** Where the events went missing or doubled: Kafka's content per event, and checkpoints that reuse an epoch. */
async function diagnose(pipeline: ChaosPipeline, prefix: string, summary: LoadSummary, counted: Map<string, Counted>, ctx: RoundContext): Promise<void> {
  try {
    const inKafka = await pipeline.kafkaCounts(prefix);
    const total = (xs: Iterable<number>): number => [...xs].reduce((n, x) => n + x, 0);
    const kafkaOf = (event: string): number => inKafka.get(event) ?? 0;
    const edgeLost = summary.ledgers.filter((l) => kafkaOf(l.event) < l.ackedEvents);
    const edgeDoubled = summary.ledgers.filter((l) => kafkaOf(l.event) > l.sentEvents);
    const aggregatorDiffers = summary.ledgers.filter((l) => (counted.get(l.event)?.events ?? 0) !== kafkaOf(l.event));
    ctx.log(
      `  diagnosis: Kafka holds ${total(inKafka.values())} events of the round (sent ${total(summary.ledgers.map((l) => l.sentEvents))}, acknowledged ${total(summary.ledgers.map((l) => l.ackedEvents))}, ClickHouse ${total([...counted.values()].map((c) => c.events))}); ` +
        `clients with fewer events in Kafka than acknowledged (lost between edge and Kafka): ${edgeLost.length}; ` +
        `with more in Kafka than sent (counted twice at the edge): ${edgeDoubled.length}; ` +
        `with ClickHouse different from Kafka (aggregator): ${aggregatorDiffers.length}`,
    );
  } catch (e) {
    ctx.log(`  diagnosis: could not read the partials topic: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    const reused = await pipeline.reusedEpochs();
    if (reused.length) ctx.log(`  diagnosis: checkpoints of this run that share an epoch number with different contents (a loss only where insert tokens derive from the epoch number): ${reused.join('; ')}`);
  } catch (e) {
    ctx.log(`  diagnosis: could not read aggregator_checkpoints: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Drained: the group's committed offsets have reached the end of every partition as it was when
 * the clients stopped (edges keep sending heartbeats, so the log end itself keeps moving), no
 * window since the round started is provisional, the window of the newest event is final, and the
 * round's counts are unchanged between two reads. A missing aggregator result therefore shows as
 * a violation, not as a short wait.
 */
async function drain(pipeline: ChaosPipeline, prefix: string, roundStart: number, lastEventMs: number, ctx: RoundContext): Promise<{ ok: boolean; detail: string }> {
  const deadline = Date.now() + ctx.drainTimeoutMs;
  const lastWindow = Math.floor(lastEventMs / ctx.windowSizeMs) * ctx.windowSizeMs;
  const fromMs = Math.floor(roundStart / ctx.windowSizeMs) * ctx.windowSizeMs - ctx.windowSizeMs;
  let target: Map<number, bigint> | undefined;
  let previous = '';
  let detail = '';
  let nextProgress = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      const offsets = await pipeline.offsets();
      target ??= new Map(offsets.map((p) => [p.partition, p.high]));
      const behind = offsets.reduce((n, p) => n + Number((target?.get(p.partition) ?? 0n) > p.committed ? (target?.get(p.partition) ?? 0n) - (p.committed < 0n ? 0n : p.committed) : 0n), 0);
      const w = await pipeline.windows(fromMs);
      const counts = JSON.stringify([...(await pipeline.counted(prefix)).entries()].sort());
      detail = `${behind} messages of the round not committed, ${w.provisional} provisional windows, newest final window ${w.lastFinalMs ? new Date(w.lastFinalMs).toISOString() : 'none'} (needed ${new Date(lastWindow).toISOString()})`;
      if (behind === 0 && w.provisional === 0 && w.lastFinalMs >= lastWindow && counts === previous) return { ok: true, detail };
      previous = behind === 0 ? counts : '';
    } catch (e) {
      detail = `drain check failed: ${e instanceof Error ? e.message : String(e)}`;
      previous = '';
    }
    if (Date.now() > nextProgress) {
      ctx.log(`  draining: ${detail}`);
      nextProgress = Date.now() + 30_000;
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
