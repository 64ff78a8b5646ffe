import { describe, expect, it } from 'vitest';
import { createAccumulator } from '../../../edge/accumulator.ts';
import { createFlusher, type FlusherOptions } from '../../../edge/flusher.ts';
import { FakePartialSink, fakeSink, json, makeEdge, postInit, send, sentRows, T0, track } from './helpers.ts';

function totalCount(sink: FakePartialSink): number {
  return sentRows(sink).reduce((n, r) => n + r.partial.count, 0);
}

async function untilWaiting(flusher: { stats(): { waitingRequests: number } }): Promise<void> {
  while (flusher.stats().waitingRequests === 0) await new Promise((r) => setTimeout(r, 0));
}

describe('group commit', () => {
  it('flushes on its own COMMIT_DELAY_MS after a request starts waiting, sharing one envelope', async () => {
    const edge = makeEdge({ COMMIT_DELAY_MS: '20' });
    const first = edge.app.request('/v1/batch', postInit({ batch: [track({ messageId: 'x1' })] }, { writeKey: 'wk_a' }));
    const second = edge.app.request('/v1/batch', postInit({ batch: [track({ messageId: 'x2', userId: 'u2' })] }, { writeKey: 'wk_a' }));
    // No flushNow(), no timer tick: the commit delay alone answers both.
    const [a, b] = await Promise.all([first, second]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(edge.partials.messages).toHaveLength(1);
    expect(totalCount(edge.partials)).toBe(2);
  });

  it('answers a batch only after the flush carrying it is acknowledged', async () => {
    const edge = makeEdge();
    let answered = false;
    const res = Promise.resolve(edge.app.request('/v1/batch', postInit({ batch: [track()] }, { writeKey: 'wk_a' }))).then((r) => {
      answered = true;
      return r;
    });
    await untilWaiting(edge.flusher);
    expect(answered).toBe(false);

    edge.partials.hold();
    const flushing = edge.flusher.flushNow();
    await new Promise((r) => setTimeout(r, 5));
    expect(edge.partials.attempts).toBe(1);
    expect(answered).toBe(false); // sent, not yet acknowledged

    edge.partials.release();
    await flushing;
    expect((await res).status).toBe(200);
    expect(totalCount(edge.partials)).toBe(1);
  });

  it('answers 503 + Retry-After when the sink keeps failing, then delivers once after recovery', async () => {
    const edge = makeEdge();
    edge.partials.failNext(4); // the first attempt and all 3 retries
    const batch = [track({ messageId: 'a' }), track({ messageId: 'b', userId: 'u2' })];
    const failed = await send(edge, '/v1/batch', { batch }, { writeKey: 'wk_a' });
    expect(failed.status).toBe(503);
    expect(failed.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    expect(await json(failed)).toMatchObject({ error: { code: 'sink_unavailable' } });
    expect(edge.partials.attempts).toBe(4);
    expect(edge.flusher.stats().pendingEnvelopes).toBe(1);

    // The client retries the same batch: its events are already buffered and must not count twice.
    const retried = await send(edge, '/v1/batch', { batch }, { writeKey: 'wk_a' });
    expect(retried.status).toBe(200);
    expect(await json(retried)).toMatchObject({ accepted: 2, duplicates: 2 });
    expect(totalCount(edge.partials)).toBe(2);
    expect(edge.flusher.stats()).toMatchObject({ pendingEnvelopes: 0, pendingRows: 0 });
  });

  it('re-sends a failed envelope with the same sequence number (the aggregator dedups by it)', async () => {
    const edge = makeEdge();
    edge.partials.failNext(4);
    await send(edge, '/v1/track', track(), { writeKey: 'wk_a' });
    await send(edge, '/v1/track', track({ userId: 'other' }), { writeKey: 'wk_a' });
    const envelopes = edge.partials.envelopes();
    expect(envelopes.map((e) => e.sequence)).toEqual([1, 2]);
    expect(envelopes.map((e) => e.rows.length)).toEqual([1, 1]);
    expect(envelopes.every((e) => e.sourceId === 'edge-test')).toBe(true);
    expect(edge.partials.messages.every((m) => m.key === 'edge-test')).toBe(true);
  });

  it('recovers within one flush when a retry succeeds', async () => {
    const edge = makeEdge();
    edge.partials.failNext(2);
    const res = await send(edge, '/v1/track', track(), { writeKey: 'wk_a' });
    expect(res.status).toBe(200);
    expect(edge.partials.attempts).toBe(3);
  });

  it('keeps rejected records when the rejected sink fails and sends them later', async () => {
    const edge = makeEdge();
    edge.rejected.failNext(4);
    const res = await send(edge, '/v1/batch', { batch: [track(), { type: 'track' }] }, { writeKey: 'wk_a' });
    expect(res.status).toBe(503);
    expect(edge.flusher.stats().bufferedRejected).toBe(1);
    await edge.flusher.flushNow();
    expect(edge.rejected.records).toHaveLength(1);
    expect(totalCount(edge.partials)).toBe(1);
  });

  it('answers beacons at once even while the sink is down, without losing them', async () => {
    const edge = makeEdge();
    edge.partials.failNext(4);
    const res = await edge.app.request('/v1/collect', { method: 'POST', body: JSON.stringify({ ...track(), writeKey: 'wk_a' }) });
    expect(res.status).toBe(202);
    expect((await edge.flusher.flushNow()).ok).toBe(false);
    expect((await edge.flusher.flushNow()).ok).toBe(true);
    expect(totalCount(edge.partials)).toBe(1);
  });
});

describe('flusher', () => {
  function make(over: Partial<FlusherOptions> = {}) {
    const clock = { now: T0 };
    const accumulator = createAccumulator({ windowSizeMs: 60_000, cardinalityCap: 100 });
    const partials = new FakePartialSink();
    const flusher = createFlusher({
      sourceId: 'src',
      accumulator,
      sink: fakeSink(partials),
      now: () => clock.now,
      flushIntervalMs: 1000,
      heartbeatMs: 5000,
      watermarkDelayMs: 1000,
      flushMaxRows: 3,
      maxPendingRows: 100,
      sleep: async () => undefined,
      ...over,
    });
    const add = (event: string, t = T0) => accumulator.add({ eventTimeMs: t, site: 's', event, dimensions: [], user: undefined, value: undefined });
    return { clock, accumulator, partials, flusher, add };
  }

  it('sends heartbeats while idle so the watermark advances, and nothing in between', async () => {
    const { clock, partials, flusher } = make();
    await flusher.tick(); // first tick announces the source
    for (let i = 0; i < 4; i++) {
      clock.now += 1000;
      await flusher.tick();
    }
    clock.now += 1000;
    await flusher.tick();
    const envelopes = partials.envelopes();
    expect(envelopes.map((e) => [e.rows.length, e.watermarkMs - T0, e.createdAtMs - T0])).toEqual([
      [0, -1000, 0],
      [0, 4000, 5000],
    ]);
  });

  it('keeps the watermark monotone and sequences strictly increasing, with createdAt = now', async () => {
    const { clock, partials, flusher, add } = make({ initialSequence: 10 });
    add('a');
    await flusher.flushNow();
    clock.now -= 30_000; // the wall clock steps back
    add('b');
    await flusher.flushNow();
    clock.now += 60_000;
    add('c');
    await flusher.flushNow();
    const envelopes = partials.envelopes();
    expect(envelopes.map((e) => e.sequence)).toEqual([10, 11, 12]);
    expect(envelopes.map((e) => e.watermarkMs - T0)).toEqual([-1000, -1000, 29_000]);
    expect(envelopes.map((e) => e.createdAtMs - T0)).toEqual([0, -30_000, 30_000]);
  });

  it('defaults the first sequence to the clock so a restarted source moves forward', async () => {
    const { partials, flusher, add } = make();
    add('a');
    await flusher.flushNow();
    expect(partials.envelopes()[0]?.sequence).toBe(T0);
  });

  it('flushes at once when rows reach flushMaxRows, and splits envelopes by rows', async () => {
    const { partials, flusher, add } = make();
    add('a');
    add('b');
    flusher.rowsAdded();
    expect(partials.attempts).toBe(0);
    add('c');
    flusher.rowsAdded();
    await new Promise((r) => setTimeout(r, 0));
    expect(partials.envelopes().map((e) => e.rows.length)).toEqual([3]);
    for (const e of ['d', 'e', 'f', 'g', 'h', 'i', 'j']) add(e);
    await flusher.flushNow();
    expect(partials.envelopes().map((e) => e.rows.length)).toEqual([3, 3, 3, 1]);
  });

  it('splits envelopes that would exceed maxEnvelopeBytes', async () => {
    const { partials, flusher, add } = make({ flushMaxRows: 1000, maxEnvelopeBytes: 200 });
    for (let i = 0; i < 8; i++) add(`event-with-a-longish-name-${i}`);
    await flusher.flushNow();
    const envelopes = partials.envelopes();
    expect(envelopes.length).toBeGreaterThan(1);
    expect(partials.messages.every((m) => m.value.byteLength <= 200)).toBe(true);
    expect(envelopes.flatMap((e) => e.rows).length).toBe(8);
    expect(envelopes.map((e) => e.sequence)).toEqual(envelopes.map((_, i) => T0 + i));
  });

  it('stops retrying at once on a non-retriable error', async () => {
    const { partials, flusher, add } = make();
    let calls = 0;
    partials.sendPartials = async () => {
      calls++;
      throw Object.assign(new Error('message too large'), { retriable: false });
    };
    add('a');
    const outcome = await flusher.flushNow();
    expect(outcome.ok).toBe(false);
    expect(calls).toBe(1);
  });

  it('backs off with jitter between retries', async () => {
    const delays: number[] = [];
    const { partials, flusher, add } = make({ sleep: async (ms) => void delays.push(ms), random: () => 1, backoffBaseMs: 100 });
    partials.failNext(3);
    add('a');
    expect((await flusher.flushNow()).ok).toBe(true);
    expect(delays).toEqual([100, 200, 400]);
  });

  it('runs one flush at a time and coalesces callers into one follow-up flush', async () => {
    const { partials, flusher, add } = make();
    add('a');
    partials.hold();
    const first = flusher.flushNow();
    const second = flusher.flushNow();
    const third = flusher.flushNow();
    expect(second).toBe(third);
    partials.release();
    await Promise.all([first, second, third]);
    expect(partials.messages).toHaveLength(1);
  });

  it('close() flushes what is left', async () => {
    const { partials, flusher, add } = make();
    add('a');
    add('b');
    expect((await flusher.close()).ok).toBe(true);
    expect(sentRows(partials)).toHaveLength(2);
  });
});
