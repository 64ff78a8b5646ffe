import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hash64FromHex, hllEstimate } from '../../../shared/algebra/index.ts';
import { createAccumulator, OTHER, type Accumulator, type AccumulatorEvent } from '../../../edge/accumulator.ts';
import { makeEdge, send, sentRows, T0, track } from './helpers.ts';

const ev = (o: Partial<AccumulatorEvent>): AccumulatorEvent => ({ eventTimeMs: T0, site: 's', event: 'e', dimensions: [], user: undefined, value: undefined, ...o });

describe('accumulator', () => {
  it('groups by window, site, event and dimensions', () => {
    const acc = createAccumulator({ windowSizeMs: 60_000, cardinalityCap: 100 });
    acc.add(ev({ dimensions: [['path', '/a']], user: hash64FromHex('a1b2c3d4e5f60718'), value: 2 }));
    acc.add(ev({ dimensions: [['path', '/a']], user: hash64FromHex('1f2e3d4c5b6a7988'), value: 4, eventTimeMs: T0 + 59_999 }));
    acc.add(ev({ dimensions: [['path', '/a']], eventTimeMs: T0 + 60_000 }));
    acc.add(ev({ dimensions: [['path', '/b']] }));
    acc.add(ev({ site: 't', dimensions: [['path', '/a']] }));
    acc.add(ev({ event: 'f', dimensions: [['path', '/a']] }));
    expect(acc.rowCount).toBe(5);
    const rows = acc.drain();
    expect(acc.rowCount).toBe(0);
    const first = rows.find((r) => r.windowStartMs === T0 && r.site === 's' && r.event === 'e' && r.dimensions[0]?.[1] === '/a');
    expect(first?.partial).toMatchObject({ count: 2, valueCount: 2, sum: 6, min: 2, max: 4 });
    expect(Math.round(hllEstimate(first!.partial.users))).toBe(2);
  });

  it('folds values beyond the cap into __other__, per window, site and dimension, across drains', () => {
    const acc = createAccumulator({ windowSizeMs: 60_000, cardinalityCap: 2 });
    for (const path of ['/1', '/2', '/3']) acc.add(ev({ dimensions: [['path', path]] }));
    acc.drain();
    acc.add(ev({ dimensions: [['path', '/4']] })); // same window, after a flush: still capped
    acc.add(ev({ dimensions: [['path', '/1']] })); // a kept value stays itself
    acc.add(ev({ site: 'other-site', dimensions: [['path', '/4']] }));
    acc.add(ev({ eventTimeMs: T0 + 60_000, dimensions: [['path', '/4']] })); // next window starts fresh
    const values = acc.drain().map((r) => `${r.windowStartMs - T0}|${r.site}|${r.dimensions[0]?.[1]}`).sort();
    expect(values).toEqual(['0|other-site|/4', `0|s|${OTHER}`, '0|s|/1', '60000|s|/4'].sort());
  });

  it('caps event names too', () => {
    const acc = createAccumulator({ windowSizeMs: 60_000, cardinalityCap: 1 });
    acc.add(ev({ event: 'a' }));
    acc.add(ev({ event: 'b' }));
    expect(acc.drain().map((r) => r.event).sort()).toEqual([OTHER, 'a']);
  });

  it('applies CARDINALITY_CAP through the app', async () => {
    const edge = makeEdge({ CARDINALITY_CAP: '2', DIMENSIONS: 'path' });
    const batch = ['/a', '/b', '/c', '/d'].map((path) => track({ context: { page: { path } } }));
    await send(edge, '/v1/batch', { batch }, { writeKey: 'wk_a' });
    const rows = sentRows(edge.partials);
    expect(rows.map((r) => r.dimensions[0]?.[1]).sort()).toEqual(['/a', '/b', OTHER]);
    expect(rows.find((r) => r.dimensions[0]?.[1] === OTHER)?.partial.count).toBe(2);
  });

  /** Distinct values kept (not `__other__`) per window, site and dimension, over everything drained. */
  function keptPerGroup(drained: ReturnType<Accumulator['drain']>): Map<string, Set<string>> {
    const groups = new Map<string, Set<string>>();
    const note = (key: string, value: string) => {
      if (value === OTHER) return;
      let set = groups.get(key);
      if (set === undefined) groups.set(key, (set = new Set()));
      set.add(value);
    };
    for (const r of drained) {
      note(`${r.windowStartMs}|${r.site}|$event`, r.event);
      for (const [name, value] of r.dimensions) note(`${r.windowStartMs}|${r.site}|${name}`, value);
    }
    return groups;
  }

  it('keeps the values of events for a window older than every tracked one (late data is not folded for being late)', () => {
    const acc = createAccumulator({ windowSizeMs: 60_000, cardinalityCap: 1000 });
    acc.add(ev({ dimensions: [['path', '/first']] }));
    // Seventeen later windows take every tracked place; then late events for the first window.
    for (let w = 1; w <= 17; w++) acc.add(ev({ eventTimeMs: T0 + w * 60_000, dimensions: [['path', '/x']] }));
    for (const path of ['/late-a', '/late-b']) acc.add(ev({ dimensions: [['path', path]] }));
    const first = acc.drain().filter((r) => r.windowStartMs === T0).map((r) => r.dimensions[0]?.[1]).sort();
    expect(first).toEqual(['/first', '/late-a', '/late-b']);
  });

  it('keeps the dimensions of a late window it never tracked (an offline client), within the cap', () => {
    const acc = createAccumulator({ windowSizeMs: 60_000, cardinalityCap: 2, maxTrackedWindows: 4 });
    acc.add(ev({ eventTimeMs: T0 + 3_600_000 }));
    for (const path of ['/a', '/b', '/c']) acc.add(ev({ eventTimeMs: T0 + 60_000, dimensions: [['path', path]] }));
    expect(acc.drain().filter((r) => r.windowStartMs === T0 + 60_000).map((r) => r.dimensions[0]?.[1]).sort()).toEqual(['/a', '/b', OTHER]);
  });

  // In any order of event times, including windows older than every tracked one and far-past
  // windows beyond the horizon: an evicted window that returns continues with the rest of its cap.
  it('holds the cap per window, site and dimension for any order of event times, old windows included (property)', () => {
    const W = 60_000;
    const event = fc.record({
      window: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.constantFrom(-3000, -2000, -60)),
      site: fc.constantFrom('s', 't'),
      event: fc.constantFrom('a', 'b', 'c', 'd'),
      path: fc.integer({ min: 0, max: 9 }).map((i) => `/${i}`),
      drain: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(event, { maxLength: 300, size: 'max' }), fc.constantFrom(4, 13), (events, tracked) => {
        const acc = createAccumulator({ windowSizeMs: W, cardinalityCap: 3, maxTrackedWindows: tracked, capHorizonMs: 100 * W });
        const drained: ReturnType<Accumulator['drain']> = [];
        for (const e of events) {
          acc.add(ev({ eventTimeMs: T0 + e.window * W, site: e.site, event: e.event, dimensions: [['path', e.path]] }));
          if (e.drain) drained.push(...acc.drain());
        }
        drained.push(...acc.drain());
        for (const [group, kept] of keptPerGroup(drained)) expect(kept.size, group).toBeLessThanOrEqual(3);
        expect(drained.reduce((n, r) => n + r.partial.count, 0)).toBe(events.length);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps at most the cap in a window attacked in rounds separated by 17 newer windows, and counts every event (issue #10 finding 5)', () => {
    const W = 60_000;
    const acc = createAccumulator({ windowSizeMs: W, cardinalityCap: 1000 });
    const drained: ReturnType<Accumulator['drain']> = [];
    let next = 0;
    let newer = 1;
    // 4,840 distinct paths to window 0 in rounds of 440, each round after 17 newer windows.
    for (let round = 0; round < 11; round++) {
      for (let i = 0; i < 440; i++) acc.add(ev({ dimensions: [['path', `/p${next++}`]] }));
      drained.push(...acc.drain());
      for (let k = 0; k < 17; k++) acc.add(ev({ eventTimeMs: T0 + newer++ * W, dimensions: [['path', '/x']] }));
    }
    drained.push(...acc.drain());
    const first = drained.filter((r) => r.windowStartMs === T0);
    expect(next).toBe(4840);
    expect(new Set(first.map((r) => r.dimensions[0]?.[1]).filter((v) => v !== OTHER)).size).toBe(1000);
    expect(first.reduce((n, r) => n + r.partial.count, 0)).toBe(4840);
  });

  it('keeps the values of a late correction for an evicted window below the cap', () => {
    const acc = createAccumulator({ windowSizeMs: 60_000, cardinalityCap: 3, maxTrackedWindows: 4 });
    for (const path of ['/a', '/b']) acc.add(ev({ dimensions: [['path', path]] }));
    for (let w = 1; w <= 10; w++) acc.add(ev({ eventTimeMs: T0 + w * 60_000, dimensions: [['path', '/x']] }));
    for (const path of ['/c', '/d']) acc.add(ev({ dimensions: [['path', path]] }));
    const first = acc.drain().filter((r) => r.windowStartMs === T0).map((r) => r.dimensions[0]?.[1]).sort();
    // Two kept before eviction, one place left after it.
    expect(first).toEqual(['/a', '/b', '/c', OTHER].sort());
  });

  it('folds every value of a forgotten window older than the horizon', () => {
    const acc = createAccumulator({ windowSizeMs: 60_000, cardinalityCap: 3, maxTrackedWindows: 2, capHorizonMs: 5 * 60_000 });
    acc.add(ev({ dimensions: [['path', '/a']] }));
    for (let w = 1; w <= 10; w++) acc.add(ev({ eventTimeMs: T0 + w * 60_000, dimensions: [['path', '/x']] }));
    acc.add(ev({ dimensions: [['path', '/b']] }));
    acc.add(ev({ eventTimeMs: T0 + 8 * 60_000, dimensions: [['path', '/y']] })); // within the horizon
    const rows = acc.drain();
    expect(rows.filter((r) => r.windowStartMs === T0).map((r) => r.dimensions[0]?.[1]).sort()).toEqual(['/a', OTHER].sort());
    expect(rows.filter((r) => r.windowStartMs === T0 + 8 * 60_000).map((r) => r.dimensions[0]?.[1]).sort()).toEqual(['/x', '/y']);
  });
});
