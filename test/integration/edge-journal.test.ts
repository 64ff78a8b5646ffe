import { execFileSync, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAggregator, type RunningAggregator } from '../../core/aggregator/kafka-runner.ts';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { createClickHouseCheckpointStore } from '../../core/clickhouse/checkpoint-store.ts';
import { createEmissionWriter } from '../../core/clickhouse/emission-writer.ts';
import type { CoreConfig } from '../../core/config/core-config.ts';
import { createKafka } from '../../core/kafka/client.ts';
import { ensurePipelineTopics } from '../../core/kafka/topics.ts';
import { silentLogger } from '../../core/log.ts';
import { countEvents, openTestClickHouse, testCoreConfig } from './helpers/aggregator-harness.ts';
import { postBatch as postBatchAs, startEdgeProcess, trackEvents, type EdgeProcess } from './helpers/edge-process.ts';
import { tempDedupDir } from './setup/dedup-dir.ts';
import { testKafkaBrokers, waitFor } from './setup/kafka-test-env.ts';

// The flush journal (ADR 0010, "The flush journal"), through the whole pipeline: a real edge
// process dies exactly between "Kafka acknowledged the envelope" and "the acknowledgement is
// recorded" (the test-only TRIBUTARY_TEST_ONLY_SIGKILL_AFTER_KAFKA_ACK of fixtures/edge-process.ts), so
// its client never got a 200 although its events are counted. The client retries on the
// restarted edge: the events must stay counted once in ClickHouse, read through the aggregator.
let ch: ClickHouse;
let config: CoreConfig;
let aggregator: RunningAggregator;
const children: ChildProcess[] = [];

beforeAll(async () => {
  ch = await openTestClickHouse('trib-edge-journal');
  const brokers = testKafkaBrokers();
  config = testCoreConfig(brokers);
  await ensurePipelineTopics(createKafka(brokers, 'edge-journal-setup', silentLogger()), config);
  aggregator = await startAggregator({
    kafka: createKafka(brokers, 'edge-journal-agg', silentLogger()),
    topic: config.topics.partials,
    groupId: config.aggregator.groupId,
    deadLetterTopic: config.topics.deadLetter,
    writer: createEmissionWriter(ch),
    checkpoints: createClickHouseCheckpointStore(ch, createEmissionWriter(ch)),
    settings: config.aggregator,
    emitIntervalMs: 100,
    sessionTimeoutMs: 6000,
    retryDelayMs: 200,
    logger: silentLogger(),
  });
}, 120_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await aggregator?.stop();
  await ch?.close();
});

function startEdge(dedupDir: string, extra: Record<string, string> = {}): Promise<EdgeProcess> {
  return startEdgeProcess({ writeKeys: 'wk_ej:ej-site', dedupDir, topics: config.topics, env: extra, onSpawn: (child) => void children.push(child) });
}

const postBatch = (url: string, batch: unknown[]) => postBatchAs(url, 'wk_ej', batch);
const events = (prefix: string, n: number): unknown[] => trackEvents(prefix, n, (i) => `/p${i}`);

describe('flush journal: an edge SIGKILLed between the Kafka acknowledgement and recording it', () => {
  it('counts the events of the cut request once in ClickHouse when the client retries on the restarted edge', { timeout: 120_000 }, async () => {
    const dir = tempDedupDir();
    const a = await startEdge(dir, { TRIBUTARY_TEST_ONLY_SIGKILL_AFTER_KAFKA_ACK: '1' });
    // 40 events on 40 paths: the envelope is split over the topic's 4 partitions (cell routing).
    const batch = events('cut', 40);
    const first = await postBatch(a.url, batch);
    expect(first).toHaveProperty('error');
    const [, signal] = await a.exited;
    expect(signal).toBe('SIGKILL');
    // The events did reach Kafka and are counted, though the client never got its 200.
    await waitFor(async () => (await countEvents(ch, 'ej-site')) === 40, 'the cut request counted', 60_000);

    // The edge comes back on the same DEDUP_DIR (its start-up re-sends the dead one's journal),
    // and the client retries the batch.
    const b = await startEdge(dir);
    const retry = await postBatch(b.url, batch);
    expect(retry).toMatchObject({ status: 200 });
    const later = events('later', 5);
    expect(await postBatch(b.url, later)).toMatchObject({ status: 200, body: { accepted: 5, duplicates: 0 } });

    await waitFor(async () => (await countEvents(ch, 'ej-site')) >= 45, '45 events counted', 60_000);
    // The retry counted twice would show up by now; give the aggregator a few more epochs.
    await new Promise((r) => setTimeout(r, 3000));
    const rs = await ch.client.query({ query: "SELECT event, sum(events) AS n FROM agg_minute WHERE site = 'ej-site' GROUP BY event ORDER BY event", format: 'JSONEachRow' });
    const rows = await rs.json<{ event: string; n: number | string }>();
    expect(rows.map((r) => r.event)).toEqual([...batch, ...later].map((e) => (e as { event: string }).event).sort());
    expect(rows.filter((r) => Number(r.n) !== 1)).toEqual([]);
    // What the client was told: all of the retry was already counted.
    expect(retry).toMatchObject({ status: 200, body: { duplicates: 40 } });
    expect(b.stderr()).toContain('flush_journal_recovered');
    b.child.kill('SIGTERM');
    await b.exited;
  });

  it('a replaced cluster worker takes a new source id, never its dead predecessor\'s', { timeout: 60_000 }, async () => {
    const edge = await startEdge(tempDedupDir(), { EDGE_PROCESSES: '2' });
    const started = (): string[] =>
      edge
        .stderr()
        .split('\n')
        .filter((l) => l.includes('"edge_started"'))
        .map((l) => String((JSON.parse(l) as { source_id?: unknown }).source_id));
    await waitFor(() => started().length === 2, 'two workers started');
    const [worker] = execFileSync('pgrep', ['-P', String(edge.child.pid)]).toString().trim().split('\n').map(Number);
    process.kill(worker as number, 'SIGKILL');
    await waitFor(() => started().length === 3, 'the replacement worker started', 30_000);
    const ids = started();
    // Its predecessor's id (and sequences) may still be re-sent from the journal: never reused.
    expect(new Set(ids).size).toBe(3);
    expect(ids[2]).toMatch(/-[12]\.2$/);
    edge.child.kill('SIGTERM');
    await edge.exited;
  });
});
