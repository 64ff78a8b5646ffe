import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { beforeEach, describe, expect, it } from 'vitest';
import { hllEstimate, type PartialEnvelope } from '../../shared/algebra/index.ts';
import { shardIndex } from '../../edge/worker/shard-routing.ts';
import { EDGE_ID, SHARDS, allStats, drainShards, fakeGateway, post, shardStub, track, worker } from './helpers.ts';

// The Durable Object path end to end inside workerd: acknowledged -> in DO storage -> alarm ->
// signed envelope POSTed to the gateway -> deleted only after its 200.
async function busiestShard(): Promise<number> {
  const stats = await allStats();
  let best = 0;
  stats.forEach((s, i) => {
    if (s.pendingEvents > (stats[best]?.pendingEvents ?? 0)) best = i;
  });
  return best;
}

const storedRows = (index: number): Promise<{ pending: number; outbox: number }> =>
  runInDurableObject(shardStub(index), (_instance, state) => ({
    pending: Number(state.storage.sql.exec<{ n: number | null }>('SELECT sum(n) AS n FROM pending').one().n ?? 0),
    outbox: Number(state.storage.sql.exec<{ n: number }>('SELECT count(*) AS n FROM outbox').one().n),
  }));

const countOf = (e: PartialEnvelope | undefined): number => (e?.rows ?? []).reduce((n, r) => n + r.partial.count, 0);

describe('Durable Object shard flush', () => {
  beforeEach(async () => {
    await drainShards();
  });

  it('keeps acknowledged rows in storage until the gateway answers 200, retrying the same sequence', async () => {
    const batch = Array.from({ length: 60 }, (_, i) => track({ userId: `user-${i % 12}`, context: { page: { path: '/pricing' } } }));
    expect((await post('/v1/batch', { batch }, { writeKey: 'wk_demo' })).status).toBe(200);
    const index = await busiestShard();
    const before = (await allStats())[index]!;
    expect(before.pendingEvents).toBeGreaterThan(0);
    expect(await storedRows(index)).toEqual({ pending: before.pendingEvents, outbox: 0 });
    expect(before.alarmAtMs).not.toBeNull();

    // Gateway down: the alarm seals the events into one envelope, POSTs it signed, keeps it.
    let status = 503;
    const gateway = fakeGateway(() => status);
    try {
      expect(await runDurableObjectAlarm(shardStub(index))).toBe(true);
      expect(gateway.calls).toHaveLength(1);
      const first = gateway.calls[0]!;
      expect(first).toMatchObject({ kind: 'partials', edgeId: EDGE_ID, answered: 503 });
      expect(first.envelope?.sourceId).toBe(`do-${EDGE_ID}-${index}`);
      expect(countOf(first.envelope)).toBe(before.pendingEvents);
      expect(await storedRows(index)).toEqual({ pending: 0, outbox: 1 });
      const failed = await shardStub(index).stats();
      expect(failed).toMatchObject({ failedAttempts: 1, outboxEnvelopes: 1, pendingEvents: 0 });
      expect(failed.lastError).toContain('503');
      expect(failed.alarmAtMs).not.toBeNull();

      // The shard is evicted (deploy, crash): the retry after it carries the same sequence and bytes.
      await abortAllDurableObjects();
      expect(await runDurableObjectAlarm(shardStub(index))).toBe(true);
      expect(gateway.calls).toHaveLength(2);
      const second = gateway.calls[1]!;
      expect(second.envelope?.sequence).toBe(first.envelope?.sequence);
      expect(second.bytes).toEqual(first.bytes);
      expect(second.nonce).not.toBe(first.nonce);
      expect(await storedRows(index)).toEqual({ pending: 0, outbox: 1 });

      // Gateway back: 200, and only then are the rows gone.
      status = 200;
      expect(await runDurableObjectAlarm(shardStub(index))).toBe(true);
      expect(gateway.calls.at(-1)).toMatchObject({ answered: 200 });
      expect(await storedRows(index)).toEqual({ pending: 0, outbox: 0 });
      const after = await shardStub(index).stats();
      expect(after).toMatchObject({ failedAttempts: 0, outboxEnvelopes: 0, nextSequence: first.envelope!.sequence + 1 });

      // What went out is the aggregate of exactly the acknowledged events of this shard.
      const envelope = second.envelope!;
      expect(envelope.rows.every((r) => r.site === 'demo' && r.event === 'signup' && r.windowSizeMs === 60_000)).toBe(true);
      expect(envelope.rows[0]?.dimensions).toEqual([['country', 'unknown'], ['path', '/pricing']]);
      expect(hllEstimate(envelope.rows[0]!.partial.users)).toBeGreaterThan(0);

      // The next flush gets the next sequence and a watermark that never goes back.
      expect((await post('/v1/batch', { batch: [eventFor(index)] }, { writeKey: 'wk_demo' })).status).toBe(200);
      expect(await runDurableObjectAlarm(shardStub(index))).toBe(true);
      const next = gateway.calls.at(-1)!.envelope!;
      expect(next.sequence).toBe(envelope.sequence + 1);
      expect(next.watermarkMs).toBeGreaterThanOrEqual(envelope.watermarkMs);
      expect(countOf(next)).toBe(1);
    } finally {
      gateway.restore();
    }
  });

  it('sends the redacted rejected events to the gateway and forgets them after its 200', async () => {
    const res = await post('/v1/batch', { batch: [{ type: 'track', messageId: 'rej-1', userId: 'secret@example.com' }] }, { writeKey: 'wk_demo' });
    expect(res.status).toBe(200);
    const gateway = fakeGateway();
    try {
      for (let i = 0; i < SHARDS; i++) await runDurableObjectAlarm(shardStub(i));
      const rejected = gateway.calls.filter((c) => c.kind === 'rejected').flatMap((c) => c.rejected ?? []);
      expect(rejected).toEqual([expect.objectContaining({ site: 'demo', index: 0, message_id: 'rej-1' })]);
      expect(JSON.stringify(rejected)).not.toContain('secret@example.com');
      expect((await allStats()).every((s) => s.rejectedRecords === 0)).toBe(true);
    } finally {
      gateway.restore();
    }
  });

  it('answers 503 + Retry-After once a shard holds MAX_PENDING_ROWS unsent events, and recovers after a flush', async () => {
    const index = 1;
    const now = Date.now();
    const filler = Array.from({ length: 600 }, (_, i) => ({ eventTimeMs: now, site: 'demo', event: 'fill', dimensions: [['path', `/p${i}`]] as Array<[string, string]>, user: undefined, value: undefined }));
    expect(await shardStub(index).ingest({ shard: `${EDGE_ID}-${index}`, events: filler, rejected: [] })).toMatchObject({ ok: true, stored: 600 });
    expect(await shardStub(index).ingest({ shard: `${EDGE_ID}-${index}`, events: filler.slice(0, 1), rejected: [] })).toMatchObject({ ok: false, code: 'overloaded' });

    const refused = await post('/v1/batch', { batch: [eventFor(index)] }, { writeKey: 'wk_demo' });
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({ error: { code: 'sink_unavailable' } });
    const health = await worker().fetch('http://edge.test/health');
    expect(health.status).toBe(503);

    await drainShards();
    // The isolate remembered the overload for Retry-After seconds; wait for it on a condition.
    let res: Response | undefined;
    for (let i = 0; i < 60; i++) {
      res = await post('/v1/batch', { batch: [eventFor(index)] }, { writeKey: 'wk_demo' });
      if (res.status === 200) break;
      expect(await res.json()).toMatchObject({ error: { code: 'overloaded' } });
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(res?.status).toBe(200);
  });
});

/** A valid event whose messageId routes it to shard `index`. */
function eventFor(index: number): Record<string, unknown> {
  for (;;) {
    const e = track();
    if (shardIndex({ site: 'demo', messageId: e.messageId as string, user: undefined, eventTimeMs: 0 }, SHARDS) === index) return e;
  }
}
