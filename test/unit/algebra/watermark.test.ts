import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { createWatermarkTracker, type WatermarkSnapshot } from '../../../shared/algebra/index.ts';

const IDLE = 60_000;

describe('createWatermarkTracker', () => {
  it('is undefined until a source reports', () => {
    const t = createWatermarkTracker({ idleTimeoutMs: IDLE });
    expect(t.current(0)).toBeUndefined();
    t.observe('a', 1_000, 0);
    expect(t.current(0)).toBe(1_000);
  });

  it('takes the minimum over skewed sources', () => {
    const t = createWatermarkTracker({ idleTimeoutMs: IDLE });
    t.observe('fast', 50_000, 0);
    t.observe('slow', 10_000, 0);
    t.observe('mid', 30_000, 0);
    expect(t.current(1)).toBe(10_000);
    t.observe('slow', 40_000, 2);
    expect(t.current(3)).toBe(30_000);
  });

  it('ignores a source once it is idle longer than the timeout (not at exactly the timeout)', () => {
    const t = createWatermarkTracker({ idleTimeoutMs: IDLE });
    t.observe('stuck', 5_000, 0);
    t.observe('live', 90_000, 0);
    expect(t.current(IDLE)).toBe(5_000);
    t.observe('live', 100_000, IDLE);
    expect(t.current(IDLE + 1)).toBe(100_000);
    expect(t.sources(IDLE + 1)).toEqual([
      { sourceId: 'live', watermarkMs: 100_000, lastSeenMs: IDLE, lastDataMs: IDLE, idle: false, holding: true },
      { sourceId: 'stuck', watermarkMs: 5_000, lastSeenMs: 0, lastDataMs: 0, idle: true, holding: false },
    ]);
  });

  it('stays undefined while an expected source has never reported', () => {
    const t = createWatermarkTracker({ idleTimeoutMs: IDLE, expectedSources: ['a', 'b'] });
    t.observe('a', 10_000, 0);
    expect(t.current(0)).toBeUndefined();
    expect(t.current(10 * IDLE)).toBeUndefined();
    t.observe('b', 20_000, 10 * IDLE);
    // 'a' has been idle for a long time, so only 'b' holds the watermark now.
    expect(t.current(10 * IDLE)).toBe(20_000);
  });

  it('holds the last value when every source is idle', () => {
    const t = createWatermarkTracker({ idleTimeoutMs: IDLE });
    t.observe('a', 10_000, 0);
    t.observe('b', 70_000, 50_000);
    expect(t.current(IDLE + 1)).toBe(70_000); // 'a' idle
    expect(t.current(10 * IDLE)).toBe(70_000); // both idle: hold, never fall back to 'a'
  });

  it('never goes backwards: late or revived sources and regressing watermarks are ignored', () => {
    const t = createWatermarkTracker({ idleTimeoutMs: IDLE });
    t.observe('a', 10_000, 0);
    t.observe('a', 5_000, 1); // a source's own watermark is monotone
    expect(t.current(1)).toBe(10_000);
    t.observe('b', 1_000, 2); // new source behind the current watermark
    expect(t.current(2)).toBe(10_000);
  });

  it('is monotone for any interleaving of observations and queries', () => {
    const op = fc.record({
      source: fc.constantFrom('a', 'b', 'c'),
      watermark: fc.integer({ min: 0, max: 1_000_000 }),
      advance: fc.integer({ min: 0, max: 2 * IDLE }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const t = createWatermarkTracker({ idleTimeoutMs: IDLE });
        let now = 0;
        let previous: number | undefined;
        for (const o of ops) {
          now += o.advance;
          t.observe(o.source, o.watermark, now);
          const c = t.current(now);
          expect(c).toBeDefined();
          if (previous !== undefined) expect(c as number).toBeGreaterThanOrEqual(previous);
          previous = c;
        }
      }),
    );
  });

  it('snapshot/restore round-trips exactly, through JSON', () => {
    const t = createWatermarkTracker({ idleTimeoutMs: IDLE, expectedSources: ['a', 'b'] });
    t.observe('b', 20_000, 5);
    t.observe('a', 10_000, 7);
    expect(t.current(8)).toBe(10_000);
    const snap = t.snapshot();
    expect(snap).toEqual({
      version: 1,
      sources: [
        { sourceId: 'a', watermarkMs: 10_000, lastSeenMs: 7, lastDataMs: 7 },
        { sourceId: 'b', watermarkMs: 20_000, lastSeenMs: 5, lastDataMs: 5 },
      ],
      currentMs: 10_000,
    });
    const restored = createWatermarkTracker({
      idleTimeoutMs: IDLE,
      expectedSources: ['a', 'b'],
      restore: JSON.parse(JSON.stringify(snap)) as WatermarkSnapshot,
    });
    expect(restored.snapshot()).toEqual(snap);
    expect(restored.current(8)).toBe(t.current(8));
    expect(restored.sources(IDLE + 7)).toEqual(t.sources(IDLE + 7));
    // Continues identically afterwards.
    for (const x of [t, restored]) x.observe('a', 25_000, 9);
    expect(restored.current(9)).toBe(t.current(9));
    expect(restored.snapshot()).toEqual(t.snapshot());
  });

  it('an empty tracker snapshots as empty', () => {
    const snap = createWatermarkTracker({ idleTimeoutMs: IDLE }).snapshot();
    expect(snap).toEqual({ version: 1, sources: [], currentMs: null });
    expect(createWatermarkTracker({ idleTimeoutMs: IDLE, restore: snap }).current(0)).toBeUndefined();
  });

  it('rejects invalid arguments (programmer error)', () => {
    expect(() => createWatermarkTracker({ idleTimeoutMs: -1 })).toThrow(RangeError);
    const t = createWatermarkTracker({ idleTimeoutMs: IDLE });
    expect(() => t.observe('a', Number.NaN, 0)).toThrow(RangeError);
    expect(() => t.current(Number.NaN)).toThrow(RangeError);
  });
});

describe('createWatermarkTracker: only sources that send data hold the watermark (issue #10 finding 1)', () => {
  const DATA = 30_000;

  it('ignores a source that only ever sent heartbeats, however far behind they are', () => {
    const t = createWatermarkTracker({ idleTimeoutMs: IDLE, dataTimeoutMs: DATA });
    t.observe('edge', 100_000, 0);
    for (let now = 0; now <= 120_000; now += 10_000) {
      t.observe('forger', now - 3_600_000, now, 'heartbeat');
      t.observe('edge', 100_000 + now, now, now % 20_000 === 0 ? 'data' : 'heartbeat');
      expect(t.current(now)).toBe(100_000 + now);
    }
    expect(t.sources(120_000).find((s) => s.sourceId === 'forger')).toMatchObject({ idle: false, holding: false, lastDataMs: null });
  });

  it('lets a source whose data stopped hold it for dataTimeoutMs more, then not', () => {
    const t = createWatermarkTracker({ idleTimeoutMs: IDLE, dataTimeoutMs: DATA });
    t.observe('stopped', 5_000, 0);
    t.observe('busy', 50_000, 0);
    for (let now = 10_000; now <= 40_000; now += 10_000) {
      t.observe('stopped', 5_000, now, 'heartbeat');
      t.observe('busy', 50_000 + now, now);
    }
    expect(t.current(DATA)).toBe(5_000);
    expect(t.current(DATA + 1)).toBe(50_000 + 40_000);
    expect(t.sources(DATA + 1).map((s) => [s.sourceId, s.holding])).toEqual([
      ['busy', true],
      ['stopped', false],
    ]);
    // Its next data row makes it hold again.
    t.observe('stopped', 95_000, 45_000);
    t.observe('busy', 120_000, 45_000);
    expect(t.current(45_000)).toBe(95_000);
    expect(t.sources(45_000).every((s) => s.holding)).toBe(true);
  });

  it('when no source holds it, quiet data sources move it with their heartbeats; heartbeat-only ones still do not', () => {
    const t = createWatermarkTracker({ idleTimeoutMs: IDLE, dataTimeoutMs: DATA });
    t.observe('a', 10_000, 0);
    t.observe('b', 12_000, 0);
    for (let now = 10_000; now <= 200_000; now += 10_000) {
      t.observe('a', 10_000 + now, now, 'heartbeat');
      t.observe('b', 12_000 + now, now, 'heartbeat');
      t.observe('forger', 1, now, 'heartbeat');
    }
    expect(t.current(200_000)).toBe(210_000);
  });

  it('with only heartbeat sources, holds at the slowest as before (no window can be open)', () => {
    const t = createWatermarkTracker({ idleTimeoutMs: IDLE, dataTimeoutMs: DATA });
    t.observe('x', 7_000, 0, 'heartbeat');
    t.observe('y', 9_000, 0, 'heartbeat');
    expect(t.current(0)).toBe(7_000);
  });

  it('restores a snapshot written before lastDataMs existed as if every source had sent data', () => {
    const old = { version: 1, sources: [{ sourceId: 'a', watermarkMs: 10_000, lastSeenMs: 5 }], currentMs: 10_000 } as WatermarkSnapshot;
    const t = createWatermarkTracker({ idleTimeoutMs: IDLE, dataTimeoutMs: DATA, restore: old });
    expect(t.sources(6)).toEqual([{ sourceId: 'a', watermarkMs: 10_000, lastSeenMs: 5, lastDataMs: 5, idle: false, holding: true }]);
    const round = createWatermarkTracker({ idleTimeoutMs: IDLE, dataTimeoutMs: DATA, restore: JSON.parse(JSON.stringify(t.snapshot())) as WatermarkSnapshot });
    round.observe('h', 1, 6, 'heartbeat');
    const again = createWatermarkTracker({ idleTimeoutMs: IDLE, dataTimeoutMs: DATA, restore: JSON.parse(JSON.stringify(round.snapshot())) as WatermarkSnapshot });
    expect(again.sources(6)).toEqual(round.sources(6));
    expect(again.sources(6).find((s) => s.sourceId === 'h')?.lastDataMs).toBeNull();
  });
});
