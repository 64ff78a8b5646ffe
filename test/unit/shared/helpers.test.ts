import { describe, expect, it } from 'vitest';
import { createByteBudget, readCapped } from '../../../shared/capped-read.ts';
import { errorMessage } from '../../../shared/errors.ts';
import { jitteredBackoffMs, writeRetryDelayMs } from '../../../shared/backoff.ts';

function streamOf(chunks: number[], o: { failAfter?: number } = {}): { stream: ReadableStream<Uint8Array>; pulled: () => number; cancelled: () => boolean } {
  let i = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (o.failAfter !== undefined && i === o.failAfter) return controller.error(new Error('connection reset'));
      const size = chunks[i++];
      if (size === undefined) controller.close();
      else controller.enqueue(new Uint8Array(size).fill(i));
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, pulled: () => i, cancelled: () => cancelled };
}

describe('errorMessage', () => {
  it('is the message of an Error and the text of anything else', () => {
    expect(errorMessage(new TypeError('broker down'))).toBe('broker down');
    expect(errorMessage('timeout')).toBe('timeout');
    expect(errorMessage(42)).toBe('42');
    expect(errorMessage(undefined)).toBe('undefined');
  });
});

describe('writeRetryDelayMs', () => {
  it('doubles from the first delay and stops at 10 s', () => {
    expect([1, 2, 3, 4].map((a) => writeRetryDelayMs(a, 500))).toEqual([500, 1000, 2000, 4000]);
    expect(writeRetryDelayMs(50, 500)).toBe(10_000);
  });
});

describe('jitteredBackoffMs without a cap', () => {
  it('stays within the upper half of the doubled delay', () => {
    expect(jitteredBackoffMs(4, 100, Infinity, () => 0)).toBe(400);
    expect(jitteredBackoffMs(4, 100, Infinity, () => 1)).toBe(800);
  });
});

describe('readCapped', () => {
  it('returns every byte up to the cap, in order', async () => {
    const s = streamOf([3, 4]);
    const r = await readCapped(s.stream, 7);
    expect(r.kind).toBe('ok');
    if (r.kind === 'ok') expect([...r.bytes]).toEqual([1, 1, 1, 2, 2, 2, 2]);
  });

  it('stops pulling and cancels the stream as soon as the cap is passed', async () => {
    const s = streamOf([4, 4, 4, 4, 4]);
    expect(await readCapped(s.stream, 6)).toEqual({ kind: 'over' });
    expect(s.pulled()).toBe(2);
    expect(s.cancelled()).toBe(true);
  });

  it('answers error, not a throw, when the stream fails', async () => {
    expect(await readCapped(streamOf([2, 2], { failAfter: 1 }).stream, 100)).toEqual({ kind: 'error' });
  });

  it('keeps the bytes of an ok read taken from the budget and gives back those of any other outcome', async () => {
    const budget = createByteBudget(10);
    const ok = await readCapped(streamOf([3, 3]).stream, 100, { budget });
    expect(ok.kind).toBe('ok');
    expect(budget.inUse).toBe(6);

    const busy = streamOf([2, 2, 2, 2]);
    expect(await readCapped(busy.stream, 100, { budget })).toEqual({ kind: 'busy' });
    expect(busy.cancelled()).toBe(true);
    expect(budget.inUse).toBe(6);

    expect(await readCapped(streamOf([2, 2, 2]).stream, 3, { budget })).toEqual({ kind: 'over' });
    expect(await readCapped(streamOf([2, 2], { failAfter: 1 }).stream, 100, { budget })).toEqual({ kind: 'error' });
    expect(budget.inUse).toBe(6);
  });
});
