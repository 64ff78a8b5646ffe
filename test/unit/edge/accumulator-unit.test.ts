import { describe, expect, it } from 'vitest';
import { hash64FromHex, hllEstimate } from '../../../core/algebra/index.ts';
import { createAccumulator, OTHER, type AccumulatorEvent } from '../../../edge/accumulator.ts';
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
});
