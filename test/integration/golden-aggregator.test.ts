import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Kafka, logLevel } from 'kafkajs';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateGoldenStream, prng, type GoldenStream } from './golden/stream.ts';
import { testKafkaBrokers, uniqueName } from './setup/kafka-test-env.ts';

// Arroyo-style golden suite: the same stream through one aggregator, three aggregators, and one
// aggregator SIGKILLed five times must write identical ClickHouse results, and those results
// must equal an oracle that ClickHouse computes from the raw events.
const CHILD = join(import.meta.dirname, 'golden', 'aggregator-child.ts');
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const WINDOW_MS = 60_000;

interface Progress { partitions: Array<{ partition: number; committedOffset: string | undefined }> }
interface Dump {
  cells: Array<Record<string, unknown> & { site: string; event: string; w: number; dims_key: string; events: number; uniques: number }>;
  hours: Array<{ site: string; event: string; w: number; events: number }>;
  late: Array<{ site: string; event: string; w: number; dims_key: string; events: number; reason: string }>;
  statuses: Array<{ w: number; partition: number; status: string }>;
  oracle: Array<{ site: string; event: string; w: number; dims_key: string; events: number; users: number; value_sum: number }>;
}

let stream: GoldenStream;
let topic: string;
let endOffsets: Map<number, string>;
let rawFile: string;

function childEnv(path: string, group: string, instances: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    KAFKA_BROKERS: testKafkaBrokers().join(','),
    CLICKHOUSE_PATH: path,
    PARTIALS_TOPIC: topic,
    DEAD_LETTER_TOPIC: `${topic}.dlq`,
    AGGREGATOR_GROUP: group,
    ALLOWED_LATENESS_MS: '10000',
    CORRECTION_HORIZON_MS: '300000',
    // No source may go idle by wall clock: the watermark must depend on the input order only.
    IDLE_TIMEOUT_MS: '86400000',
    SOURCE_DATA_TIMEOUT_MS: '86400000',
    EMIT_INTERVAL_MS: '50',
    AGGREGATOR_SESSION_TIMEOUT_MS: '6000',
    // Small fetches make many small epochs, so kills land between checkpoints and writes. The
    // input is all in Kafka before the aggregator starts: without this, catch-up epochs of up to
    // 10 s would commit it in a few large steps and the kills would rarely land mid-stream.
    AGGREGATOR_MAX_BYTES_PER_PARTITION: '4096',
    CATCHUP_EMIT_MAX_MS: '50',
    GOLDEN_INSTANCES: String(instances),
    GOLDEN_PROGRESS_MS: '25',
    GOLDEN_RAW: rawFile,
  };
}

function spawnChild(mode: 'aggregate' | 'dump', env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', CHILD, mode], { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

/** Resolves with the first progress line for which `done` holds. */
function watchProgress(child: ChildProcess, done: (p: Progress) => boolean, timeoutMs = 90_000): Promise<Progress> {
  const stderr: string[] = [];
  child.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
  let last = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`aggregator child made no progress to the expected state within ${timeoutMs} ms; last progress: ${last}\n${stderr.join('').slice(-3000)}`));
    }, timeoutMs);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (!line.startsWith('{"event":"progress"')) return;
      last = line;
      const p = JSON.parse(line) as Progress;
      if (done(p)) {
        clearTimeout(timer);
        resolve(p);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`aggregator child exited (${code ?? signal}) before the condition held; last progress: ${last}\n${stderr.join('').slice(-3000)}`));
    });
  });
}

const committedAll = (p: Progress): boolean =>
  [...endOffsets].every(([partition, end]) => end === '0' || p.partitions.some((x) => x.partition === partition && x.committedOffset === end));
const committedShare = (p: Progress): number => {
  const total = [...endOffsets.values()].reduce((s, e) => s + Number(e), 0);
  return p.partitions.reduce((s, x) => s + Number(x.committedOffset ?? 0), 0) / total;
};

async function runAggregation(name: string, o: { instances: number; kills: number; seed: number }): Promise<{ dump: Dump; killedAtShare: number[] }> {
  const path = mkdtempSync(join(tmpdir(), `trib-golden-${name}-`));
  const group = uniqueName(`golden-${name}`);
  const env = childEnv(path, group, o.instances);
  const rand = prng(o.seed);
  const killedAtShare: number[] = [];
  for (let k = 0; k < o.kills; k++) {
    const child = spawnChild('aggregate', env);
    // Kill once a random share of the input is checkpointed: mid-stream, at whatever step
    // (ingest, checkpoint save, offset commit, emission write) the process happens to be in.
    const share = 0.1 + rand() * 0.8;
    const seen = await watchProgress(child, (p) => committedShare(p) >= share).catch(() => undefined);
    child.kill('SIGKILL');
    await exited(child);
    killedAtShare.push(seen ? Number(committedShare(seen).toFixed(3)) : 1);
  }
  const child = spawnChild('aggregate', env);
  await watchProgress(child, committedAll);
  child.kill('SIGTERM');
  expect(await exited(child)).toBe(0);

  const dumper = spawnChild('dump', env);
  let out = '';
  dumper.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  let err = '';
  dumper.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  expect(await exited(dumper), err).toBe(0);
  const line = out.split('\n').find((l) => l.startsWith('GOLDEN_DUMP '));
  if (!line) throw new Error(`dump printed nothing:\n${err}`);
  return { dump: JSON.parse(line.slice('GOLDEN_DUMP '.length)) as Dump, killedAtShare };
}

beforeAll(async () => {
  stream = generateGoldenStream(20261122, { minutes: 30, windowSizeMs: WINDOW_MS, t0Ms: T0 });
  topic = uniqueName('golden-partials');
  rawFile = join(mkdtempSync(join(tmpdir(), 'trib-golden-raw-')), 'raw.json');
  writeFileSync(rawFile, JSON.stringify(stream.raw));
  const kafka = new Kafka({ clientId: 'golden-producer', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 4 }, { topic: `${topic}.dlq`, numPartitions: 1 }] });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let i = 0; i < stream.messages.length; i += 100) {
    await producer.send({ topic, acks: -1, messages: stream.messages.slice(i, i + 100) });
  }
  await producer.disconnect();
  endOffsets = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p.high]));
  await admin.disconnect();
}, 120_000);

describe('golden: one, three, and a killed-and-restarted aggregator agree with each other and the oracle', () => {
  it('writes identical results and exact counts', { timeout: 420_000 }, async () => {
    // The three runs share nothing (own ClickHouse directory, own consumer group; the input is
    // all in Kafka already), so they run side by side. The kills follow committed progress, not time.
    const [single, three, killed] = await Promise.all([
      runAggregation('single', { instances: 1, kills: 0, seed: 1 }),
      runAggregation('three', { instances: 3, kills: 0, seed: 2 }),
      runAggregation('killed', { instances: 1, kills: 5, seed: 3 }),
    ]);
    console.log(JSON.stringify({
      event: 'golden_summary',
      messages: stream.messages.length,
      duplicates: stream.duplicates,
      raw_events: stream.raw.length,
      cells: single.dump.cells.length,
      late_rows: single.dump.late.length,
      killed_at_share_of_input: killed.killedAtShare,
    }));

    // The kills really happened mid-stream, not after the work was done.
    expect(killed.killedAtShare.filter((share) => share < 1).length).toBeGreaterThanOrEqual(3);

    // (a) == (b) == (c), cell by cell: counts, sums, min/max, HLL registers, sketch bins.
    expect(three.dump.cells).toEqual(single.dump.cells);
    expect(killed.dump.cells).toEqual(single.dump.cells);
    expect(three.dump.late).toEqual(single.dump.late);
    expect(killed.dump.late).toEqual(single.dump.late);
    expect(killed.dump.hours).toEqual(single.dump.hours);
    expect(three.dump.hours).toEqual(single.dump.hours);

    // The stream exercised every path: late rows beyond the horizon exist, and every window closed.
    expect(single.dump.late.length).toBeGreaterThan(0);
    for (const run of [single, three, killed]) {
      expect(run.dump.statuses.length).toBeGreaterThan(0);
      expect(run.dump.statuses.every((s) => s.status === 'final' || s.status === 'corrected')).toBe(true);
    }

    // Oracle: per cell, counted events + events recorded as too late == raw events, exactly.
    const counted = new Map<string, number>();
    const key = (r: { site: string; event: string; w: number; dims_key: string }): string => `${r.site}|${r.event}|${r.w}|${r.dims_key}`;
    for (const c of single.dump.cells) counted.set(key(c), (counted.get(key(c)) ?? 0) + Number(c.events));
    const lateByCell = new Map<string, number>();
    for (const l of single.dump.late) lateByCell.set(key(l), (lateByCell.get(key(l)) ?? 0) + Number(l.events));
    for (const o of single.dump.oracle) {
      expect({ cell: key(o), events: (counted.get(key(o)) ?? 0) + (lateByCell.get(key(o)) ?? 0) }).toEqual({ cell: key(o), events: Number(o.events) });
    }
    expect(single.dump.oracle.reduce((s, o) => s + Number(o.events), 0)).toBe(stream.raw.length);

    // Unique users per cell without late rows: within the sketch's error (exact at these sizes).
    const oracleByCell = new Map(single.dump.oracle.map((o) => [key(o), o]));
    for (const c of single.dump.cells) {
      if (lateByCell.has(key(c))) continue;
      const exact = Number(oracleByCell.get(key(c))?.users);
      expect(Math.abs(Number(c.uniques) - exact)).toBeLessThanOrEqual(Math.max(1, exact * 0.02));
    }
  });
});
