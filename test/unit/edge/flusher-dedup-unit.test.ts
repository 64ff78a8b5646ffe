import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDedupStore, type DedupStore } from '../../../edge/node/dedup-store.ts';
import { makeEdge, postInit, track } from './helpers.ts';

// The flusher turns dedup marks committed only once the envelopes carrying them are acknowledged.
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function twoProcesses(): { edgeStore: DedupStore; other: DedupStore } {
  const dir = mkdtempSync(join(tmpdir(), 'flusher-dedup-'));
  // Two "processes" on one directory: distinct identities, both running.
  const edgeStore = openDedupStore({ dir, windowMs: 3_600_000, process: { pid: 1, start: 1 }, processAlive: () => true });
  const other = openDedupStore({ dir, windowMs: 3_600_000, process: { pid: 2, start: 2 }, processAlive: () => true });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }), () => edgeStore.close(), () => other.close());
  return { edgeStore, other };
}

async function untilWaiting(flusher: { stats(): { waitingRequests: number } }): Promise<void> {
  while (flusher.stats().waitingRequests === 0) await new Promise((r) => setTimeout(r, 0));
}

describe('dedup marks and the flush acknowledgement', () => {
  it('keeps a mark pending while the sink fails, and commits it with the acknowledged flush', async () => {
    const { edgeStore, other } = twoProcesses();
    const edge = makeEdge({}, { dedup: edgeStore });
    edge.partials.failNext(4); // the first attempt and all 3 retries
    const res = edge.app.request('/v1/batch', postInit({ batch: [track({ messageId: 'm-1' })] }, { writeKey: 'wk_a' }));
    await untilWaiting(edge.flusher);
    await edge.flusher.flushNow();
    expect((await res).status).toBe(503);
    // Not in Kafka: another process must not take a retry for a duplicate.
    expect(other.claim('site-a', ['m-1'])).toEqual({ kind: 'busy' });
    // This process re-sends the same envelope: its own retry is a duplicate.
    const retry = edge.app.request('/v1/batch', postInit({ batch: [track({ messageId: 'm-1' })] }, { writeKey: 'wk_a' }));
    await untilWaiting(edge.flusher);
    await edge.flusher.flushNow();
    const answer = await retry;
    expect(answer.status).toBe(200);
    expect(await answer.json()).toMatchObject({ accepted: 1, duplicates: 1 });
    expect(edge.partials.messages).toHaveLength(1);
    expect(other.claim('site-a', ['m-1'])).toEqual({ kind: 'ok', duplicate: [true] });
  });
});
