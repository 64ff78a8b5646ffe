import { once } from 'node:events';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeEnvelope, type PartialEnvelope } from '../../shared/algebra/index.ts';
import { postBatch as postBatchAs, startEdgeProcess, trackEvents, type EdgeProcess } from './helpers/edge-process.ts';
import { tempDedupDir } from './setup/dedup-dir.ts';
import { testKafkaBrokers, uniqueName, waitFor } from './setup/kafka-test-env.ts';

// Retries counted once wherever and whenever they arrive (ADR 0010): real edge processes on one
// DEDUP_DIR, real Kafka; the assertions read the envelopes the edges produced.
const kafka = new Kafka({ clientId: 'edge-dedup-test', brokers: testKafkaBrokers(), logLevel: logLevel.WARN });
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Topics {
  partials: string;
  rejected: string;
  envelopes: PartialEnvelope[];
}

async function topics(): Promise<Topics> {
  const t = { partials: uniqueName('dedup-partials'), rejected: uniqueName('dedup-rejected') };
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [t.partials, t.rejected].map((topic) => ({ topic, numPartitions: 1 })), waitForLeaders: true });
  await admin.disconnect();
  const envelopes: PartialEnvelope[] = [];
  const consumer: Consumer = kafka.consumer({ groupId: uniqueName('dedup-group'), maxWaitTimeInMs: 100 });
  cleanups.push(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topic: t.partials, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const d = decodeEnvelope(new Uint8Array(message.value ?? Buffer.alloc(0)));
      if (!d.ok) throw new Error(d.error.message);
      envelopes.push(d.value);
    },
  });
  return { ...t, envelopes };
}

/** Events counted per event name, from the envelopes in Kafka. */
function countsByEvent(envelopes: PartialEnvelope[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of envelopes) for (const r of e.rows) out.set(r.event, (out.get(r.event) ?? 0) + r.partial.count);
  return out;
}

async function startEdge(t: Topics, dedupDir: string, extra: Record<string, string> = {}): Promise<EdgeProcess> {
  return startEdgeProcess({
    writeKeys: 'wk_dd:dd-site',
    dedupDir,
    topics: t,
    env: extra,
    onSpawn: (child) => {
      const exited = once(child, 'exit');
      cleanups.push(async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
      });
    },
  });
}

/** POST /v1/batch on a fresh connection; the status and JSON answer (or the socket error). */
const postBatch = (url: string, batch: unknown[]) => postBatchAs(url, 'wk_dd', batch);
const events = (prefix: string, n: number): unknown[] => trackEvents(prefix, n, () => '/p');

describe('retry deduplication across edge processes (DEDUP_DIR)', () => {
  it('counts an acknowledged event once when its retries reach another process, or the same edge after a SIGKILL and a restart', async () => {
    const t = await topics();
    const dir = tempDedupDir();
    const [a, b] = await Promise.all([startEdge(t, dir), startEdge(t, dir)]);
    const batch = events('ack', 20);
    expect(await postBatch(a.url, batch)).toMatchObject({ status: 200, body: { accepted: 20, duplicates: 0 } });
    // The client did not see the answer and retries; the retry lands on the other process.
    expect(await postBatch(b.url, batch)).toMatchObject({ status: 200, body: { accepted: 20, duplicates: 20 } });

    // a crashes and comes back (an empty memory); the retry comes 1.6 s after the acknowledgement in issue #9.
    a.child.kill('SIGKILL');
    await a.exited;
    const a2 = await startEdge(t, dir);
    expect(await postBatch(a2.url, batch)).toMatchObject({ status: 200, body: { duplicates: 20 } });
    // Also without a messageId in common: new events still count (the store is not in the way).
    const later = events('later', 5);
    expect(await postBatch(a2.url, later)).toMatchObject({ status: 200, body: { accepted: 5, duplicates: 0 } });

    await waitFor(() => [...countsByEvent(t.envelopes).values()].reduce((x, y) => x + y, 0) >= 25, '25 events in Kafka');
    // Everything acknowledged was in Kafka before its 200: a retry counted twice would be there now.
    await new Promise((r) => setTimeout(r, 1000));
    const counts = countsByEvent(t.envelopes);
    expect([...counts.keys()].sort()).toEqual([...batch, ...later].map((e) => (e as { event: string }).event).sort());
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
  });

  it('counts the retry of an event whose first edge died before it reached Kafka, and refuses it while that edge lives', async () => {
    const t = await topics();
    const dir = tempDedupDir();
    // a holds its requests for a minute before flushing: its events are in memory only.
    const a = await startEdge(t, dir, { FLUSH_INTERVAL_MS: '60000', COMMIT_DELAY_MS: '60000', HEARTBEAT_MS: '60000' });
    const b = await startEdge(t, dir);
    const batch = events('lost', 10);
    const first = postBatch(a.url, batch);
    await waitFor(async () => ((await (await fetch(`${a.url}/health`)).json()) as { waitingRequests: number }).waitingRequests === 1, 'a to hold the request');
    // The retry on b while a still holds the events: 503, nothing of it counted.
    expect(await postBatch(b.url, batch)).toMatchObject({ status: 503, body: { error: { code: 'in_flight' } } });

    // a is killed before its flush: the client never got a 2xx and retries on b.
    a.child.kill('SIGKILL');
    await a.exited;
    expect(await first).toHaveProperty('error');
    expect(await postBatch(b.url, batch)).toMatchObject({ status: 200, body: { accepted: 10, duplicates: 0 } });
    expect(await postBatch(b.url, batch)).toMatchObject({ status: 200, body: { duplicates: 10 } });

    await waitFor(() => countsByEvent(t.envelopes).size >= 10, '10 events in Kafka');
    await new Promise((r) => setTimeout(r, 1000));
    const counts = countsByEvent(t.envelopes);
    expect(counts.size).toBe(10);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
  });

  it('with EDGE_PROCESSES=2, retries on fresh connections are counted once whichever process takes them', async () => {
    const t = await topics();
    const edge = await startEdge(t, tempDedupDir(), { EDGE_PROCESSES: '2' });
    // An odd number of batches: the primary hands connections to the workers in turn, so the
    // retries of a batch alternate between the worker that took it and the other one.
    const batches = Array.from({ length: 5 }, (_, i) => events(`cl${i}`, 6));
    for (const batch of batches) expect(await postBatch(edge.url, batch)).toMatchObject({ status: 200, body: { duplicates: 0 } });
    // Three retries of each on new connections: the cluster spreads connections over both workers.
    let duplicates = 0;
    for (let round = 0; round < 3; round++) {
      for (const batch of batches) {
        const r = await postBatch(edge.url, batch);
        expect(r).toMatchObject({ status: 200 });
        if ('body' in r) duplicates += Number(r.body.duplicates);
      }
    }
    expect(duplicates).toBe(3 * 30);
    await waitFor(() => countsByEvent(t.envelopes).size >= 30, '30 events in Kafka');
    await new Promise((r) => setTimeout(r, 1000));
    const counts = countsByEvent(t.envelopes);
    expect(counts.size).toBe(30);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    // Both processes produced (each its own source): the retries did cross processes.
    expect(new Set(t.envelopes.filter((e) => e.rows.length > 0).map((e) => e.sourceId.split('#')[0])).size).toBe(2);
  });
});
