import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { beforeEach, describe, expect, it } from 'vitest';
import workerEntry from '../../edge/worker/index.ts';
import { shardIndex } from '../../edge/worker/shard-routing.ts';
import { openShardStorage } from '../../edge/worker/shard-storage.ts';
import { EDGE_ID, SHARDS, allStats, drainShards, post, shardStub, track } from './helpers.ts';

// Retries on Workers (ADR 0010): the Durable Object shard an event's messageId routes to is the
// one place that decides, atomically with storing it, so it does not matter which isolate a
// retry reaches; the isolate itself must not decide (it cannot know whether a shard stored it).
const pendingTotal = async (): Promise<number> => (await allStats()).reduce((n, s) => n + s.pendingEvents, 0);

/** The same request through another isolate's state: the entry keeps its state per `env` object. */
async function postViaOtherIsolate(body: unknown, bindings: Record<string, unknown> = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const request = new Request('http://edge.test/v1/batch', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${btoa('wk_demo:')}` },
    body: JSON.stringify(body),
  });
  const res = await workerEntry.fetch(request as Parameters<typeof workerEntry.fetch>[0], { ...env, ...bindings } as Env, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

function eventFor(index: number, shards = SHARDS): Record<string, unknown> {
  for (;;) {
    const e = track();
    if (shardIndex({ site: 'demo', messageId: e.messageId as string, user: undefined, eventTimeMs: 0 }, shards) === index) return e;
  }
}

describe('Workers: retries counted once', () => {
  beforeEach(async () => {
    await drainShards();
  });

  it('a retry that reaches another isolate is a duplicate, found by the shard', async () => {
    const event = track();
    const first = await post('/v1/batch', { batch: [event] }, { writeKey: 'wk_demo' });
    expect(await first.json()).toMatchObject({ accepted: 1, duplicates: 0 });
    const retry = await postViaOtherIsolate({ batch: [event] });
    expect(retry.status).toBe(200);
    expect(await retry.json()).toMatchObject({ accepted: 1, duplicates: 1 });
    // In a batch with other events, the retry still routes to its shard.
    const others = Array.from({ length: 20 }, () => track());
    expect(await (await post('/v1/batch', { batch: [...others, event] }, { writeKey: 'wk_demo' })).json()).toMatchObject({ accepted: 21, duplicates: 1 });
    expect(await pendingTotal()).toBe(21);
  });

  it('a request refused because its shard failed is stored when retried on the same isolate (not dropped as a duplicate)', async () => {
    const index = 2;
    const now = Date.now();
    const filler = Array.from({ length: 600 }, (_, i) => ({ eventTimeMs: now, site: 'demo', event: 'fill', dimensions: [['path', `/p${i}`]] as Array<[string, string]>, user: undefined, value: undefined }));
    expect(await shardStub(index).ingest({ shard: `${EDGE_ID}-${index}`, events: filler, rejected: [] })).toMatchObject({ ok: true });
    const event = eventFor(index);
    const refused = await post('/v1/batch', { batch: [event] }, { writeKey: 'wk_demo' });
    expect(refused.status).toBe(503);
    await drainShards();

    // The client retries the same payload until it is taken (the isolate remembers the overload for Retry-After).
    let res: Response | undefined;
    for (let i = 0; i < 60; i++) {
      res = await post('/v1/batch', { batch: [event] }, { writeKey: 'wk_demo' });
      if (res.status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(res?.status).toBe(200);
    expect(await res?.json()).toMatchObject({ accepted: 1, duplicates: 0 });
    expect((await shardStub(index).stats()).pendingEvents).toBe(1);
  });

  it('changing DO_SHARDS moves a retry to another shard, where it is counted again (documented limitation)', async () => {
    // An event whose shard differs between 4 and 8 shards.
    let event: Record<string, unknown>;
    do event = track();
    while (shardIndex({ site: 'demo', messageId: event.messageId as string, user: undefined, eventTimeMs: 0 }, 4) === shardIndex({ site: 'demo', messageId: event.messageId as string, user: undefined, eventTimeMs: 0 }, 8));
    expect(SHARDS).toBe(4);
    expect(await (await post('/v1/batch', { batch: [event] }, { writeKey: 'wk_demo' })).json()).toMatchObject({ duplicates: 0 });
    expect(await (await postViaOtherIsolate({ batch: [event] }, { DO_SHARDS: '8' })).json()).toMatchObject({ duplicates: 0 });
  });

  it('forgets a key DEDUP_WINDOW_MS after it was first seen, deleting only expired rows', async () => {
    const stub = env.EDGE_SHARDS.getByName('dedup-window-test');
    await runInDurableObject(stub, (_instance, state) => {
      const store = openShardStorage(state.storage.sql);
      expect(store.markSeen('demo\u0000a', 1_000)).toBe(true);
      expect(store.markSeen('demo\u0000b', 5_000)).toBe(true);
      expect(store.markSeen('demo\u0000a', 2_000)).toBe(false);
      store.expireSeen(3_000); // window: keys seen at or after 3 000 are kept
      expect(store.seenCount()).toBe(1);
      expect(store.markSeen('demo\u0000a', 6_000)).toBe(true);
      expect(store.markSeen('demo\u0000b', 6_000)).toBe(false);
      store.expireSeen(10_000);
      expect(store.seenCount()).toBe(0);
      store.expireSeen(20_000); // nothing left: a no-op
      expect(store.seenCount()).toBe(0);
    });
  });

  it('storage per remembered key (printed for docs/BENCHMARKS.md)', async () => {
    const stub = env.EDGE_SHARDS.getByName('dedup-size-test');
    const keys = 50_000;
    const bytesPerKey = await runInDurableObject(stub, (_instance, state) => {
      const store = openShardStorage(state.storage.sql);
      const before = state.storage.sql.databaseSize;
      state.storage.transactionSync(() => {
        // analytics.js messageIds: "ajs-next-" + 32 hex digits.
        for (let i = 0; i < keys; i++) store.markSeen(`demo\u0000ajs-next-${i.toString(16).padStart(8, '0')}${'5f3a9c1e'.repeat(3)}`, 1_000 + i);
      });
      return (state.storage.sql.databaseSize - before) / keys;
    });
    console.log(`shard dedup storage: ${bytesPerKey.toFixed(1)} bytes per key (${((bytesPerKey * 1e6) / 1e6).toFixed(0)} MB per million events)`);
    expect(bytesPerKey).toBeGreaterThan(0);
  });
});
