import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addToPartial, createCardinalityCap, emptyPartial, OTHER, type PartialEnvelope, type PartialRow } from '../../../shared/algebra/index.ts';
import { createPartitionAggregator, type AggregatorSettings, type PartitionAggregator } from '../../../core/aggregator/partition-aggregator.ts';
import type { DeltaRow } from '../../../core/aggregator/emission.ts';

// Issue #10 finding 5, the aggregator side: its own cap per (window, site, dimension), folding
// like the edge, and folding the same values whatever the epoch split and however often the
// partition is restored from a checkpoint and replayed.

const W = 60_000;
const T0 = 1_800_000_000_000;

function row(window: number, site: string, dims: Array<[string, string]>, events = 1): PartialRow {
  const partial = emptyPartial();
  for (let i = 0; i < events; i++) addToPartial(partial, { value: i });
  return { windowStartMs: T0 + window * W, windowSizeMs: W, site, event: 'e', dimensions: dims, partial };
}

function envelope(sourceId: string, sequence: number, rows: PartialRow[]): PartialEnvelope {
  return { version: 1, sourceId, sequence, watermarkMs: T0, createdAtMs: T0, rows };
}

const baseSettings: AggregatorSettings = { allowedLatenessMs: 5_000, correctionHorizonMs: 3_600_000, idleTimeoutMs: 30_000, cardinalityCap: 3, cardinalityCapWindows: 4 };
const settings = baseSettings;

/** Events per cell `window|site|dimsKey`, summed over deltas (as ClickHouse sums them). */
function totals(deltas: DeltaRow[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const d of deltas) {
    const key = `${d.windowStartMs}|${d.site}|${d.event}|${d.dimsKey}`;
    m.set(key, (m.get(key) ?? 0) + d.partial.count);
  }
  return new Map([...m].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Kept (not `__other__`) values per window, site and dimension. */
function kept(deltas: DeltaRow[]): Map<string, Set<string>> {
  const m = new Map<string, Set<string>>();
  for (const d of deltas) {
    for (const [name, value] of d.dims) {
      if (value === OTHER) continue;
      const key = `${d.windowStartMs}|${d.site}|${name}`;
      let set = m.get(key);
      if (set === undefined) m.set(key, (set = new Set()));
      set.add(value);
    }
  }
  return m;
}

describe('aggregator cardinality cap', () => {
  it('keeps the first values of a window, site and dimension across edges and folds the rest into __other__', () => {
    const agg = createPartitionAggregator({ ...settings, cardinalityCap: 1000 });
    // Three edges, each within its own cap of 1,000, together 3,000 paths in one window.
    for (let e = 0; e < 3; e++) {
      const rows = Array.from({ length: 1000 }, (_, i) => row(0, 's', [['country', 'DE'], ['path', `/e${e}/${i}`]], 2));
      agg.ingest(envelope(`edge-${e}`, 1, rows), T0);
    }
    agg.ingest(envelope('edge-0', 2, [row(0, 's', [['country', 'DE'], ['path', '/e0/7']]), row(0, 't', [['country', 'DE'], ['path', '/e2/999']])]), T0);
    const deltas = agg.emit(T0).deltas;
    const t = totals(deltas);
    expect(kept(deltas).get(`${T0}|s|path`)?.size).toBe(1000);
    expect(t.get(`${T0}|s|e|country=DE\u001fpath=/e0/7`)).toBe(3);
    expect(t.get(`${T0}|s|e|country=DE\u001fpath=${OTHER}`)).toBe(2 * 2000);
    // Another site has a cap of its own.
    expect(t.get(`${T0}|t|e|country=DE\u001fpath=/e2/999`)).toBe(1);
    expect([...t.values()].reduce((a, b) => a + b, 0)).toBe(6002);
  });

  it('lets __other__ from the edges through without taking a place', () => {
    const agg = createPartitionAggregator(settings);
    agg.ingest(envelope('a', 1, [row(0, 's', [['path', OTHER]]), ...['/1', '/2', '/3', '/4'].map((p) => row(0, 's', [['path', p]]))]), T0);
    const t = totals(agg.emit(T0).deltas);
    expect([...t.keys()].map((k) => k.split('|')[3])).toEqual(['path=/1', 'path=/2', 'path=/3', `path=${OTHER}`]);
    expect(t.get(`${T0}|s|e|path=${OTHER}`)).toBe(2);
  });

  it('keeps the values of a correction for a window older than all it tracks instead of folding them', () => {
    const agg = createPartitionAggregator(settings);
    agg.ingest(envelope('a', 1, [row(0, 's', [['path', '/a']])]), T0);
    agg.ingest(envelope('a', 2, [1, 2, 3, 4].map((w) => row(w, 's', [['path', '/x']]))), T0);
    agg.ingest(envelope('a', 3, [row(0, 's', [['path', '/a']]), row(0, 's', [['path', '/b']])]), T0);
    const t = totals(agg.emit(T0).deltas);
    expect(t.get(`${T0}|s|e|path=/a`)).toBe(2);
    expect(t.get(`${T0}|s|e|path=/b`)).toBe(1);
    expect(t.get(`${T0}|s|e|path=${OTHER}`)).toBeUndefined();
  });

  it('bounds the spent table by its entry limit and folds the windows it dropped', () => {
    const caps = createCardinalityCap({ cap: 2, trackedWindows: 1, horizonMs: 1e12, maxSpentEntries: 3 });
    for (let w = 0; w < 10; w++) caps.fold(w * W, 's', [['path', '/a']]);
    expect(caps.spentEntries).toBeLessThanOrEqual(3);
    // Window 0 was dropped from the table: every value of it folds; window 8 was kept: the rest of its cap.
    expect(caps.fold(0, 's', [['path', '/a']])).toEqual([['path', OTHER]]);
    expect(caps.fold(8 * W, 's', [['path', '/b']])).toEqual([['path', '/b']]);
    expect(caps.fold(8 * W, 's', [['path', '/c']])).toEqual([['path', OTHER]]);
  });

  it('restores a checkpoint of the format without a spent table (windows ascending)', () => {
    const caps = createCardinalityCap({ cap: 2, trackedWindows: 2, horizonMs: 3_600_000, restore: { windowsMs: [0, W], values: [[0, 's', 'path', ['/a', '/b']], [W, 's', 'path', ['/a']]] } });
    expect(caps.fold(W, 's', [['path', '/c']])).toEqual([['path', '/c']]);
    expect(caps.fold(0, 's', [['path', '/c']])).toEqual([['path', OTHER]]);
    // Window 0 was used last: a new window evicts window W, which returns with its two values spent.
    caps.fold(2 * W, 's', [['path', '/x']]);
    expect(caps.snapshot()).toMatchObject({ windowsMs: [0, 2 * W], spent: [[W, 's', 'path', 2]] });
    expect(caps.fold(W, 's', [['path', '/d']])).toEqual([['path', OTHER]]);
  });

  it('keeps at most the cap in a window sent 4,840 paths in rounds separated by 17 newer windows, counting all (issue #10 finding 5)', () => {
    const agg = createPartitionAggregator({ ...baseSettings, correctionHorizonMs: 24 * 3_600_000, cardinalityCap: 1000, cardinalityCapWindows: 16 });
    let next = 0;
    let newer = 1;
    let sequence = 0;
    const deltas: DeltaRow[] = [];
    for (let round = 0; round < 11; round++) {
      agg.ingest(envelope('a', ++sequence, Array.from({ length: 440 }, () => row(0, 's', [['path', `/p${next++}`]]))), T0);
      agg.ingest(envelope('a', ++sequence, Array.from({ length: 17 }, () => row(newer++, 's', [['path', '/x']]))), T0);
      deltas.push(...agg.emit(T0).deltas);
    }
    const first = deltas.filter((d) => d.windowStartMs === T0);
    expect(next).toBe(4840);
    expect(kept(first).get(`${T0}|s|path`)?.size).toBe(1000);
    expect(first.reduce((n, d) => n + d.partial.count, 0)).toBe(4840);
  });

  const envelopes = fc.array(
    fc.array(
      fc.record({
        window: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.constantFrom(-55, -50, -40)),
        site: fc.constantFrom('s', 't'),
        country: fc.constantFrom('DE', 'FR', 'IT', 'ES', 'PL'),
        path: fc.integer({ min: 0, max: 8 }).map((i) => `/${i}`),
        events: fc.integer({ min: 1, max: 3 }),
      }),
      { maxLength: 12 },
    ),
    { maxLength: 40, size: 'max' },
  );

  // The cap holds in every window, with as many places as windows or far fewer (evicted windows
  // return with the rest of their cap; far-past ones beyond the horizon fold), and the rows are
  // the same for any epoch split and any restore + replay.
  it.each([{ capWindows: 16 }, { capWindows: 4 }])('holds the cap and gives the same rows for any epoch split and any restore + replay, $capWindows tracked windows (property)', ({ capWindows }) => {
    const settings = { ...baseSettings, cardinalityCapWindows: capWindows };
    fc.assert(
      fc.property(envelopes, fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 8 }), fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 4 }), (input, emitsAt, restoresAt) => {
        const list = input.map((rows, i) => envelope(`edge-${i % 3}`, i + 1, rows.map((r) => row(r.window, r.site, [['country', r.country], ['path', r.path]], r.events))));
        const straight = createPartitionAggregator(settings);
        for (const e of list) straight.ingest(e, T0);
        const expected = straight.emit(T0).deltas;

        // The same input cut into epochs, each restore resuming from the last checkpoint and
        // replaying what followed it (as after a crash), the replay running into the next cut.
        let agg: PartitionAggregator = createPartitionAggregator(settings);
        let checkpoint = { state: agg.snapshot(), next: 0 };
        const written: DeltaRow[] = [];
        let restores = [...new Set(restoresAt)].sort((a, b) => a - b);
        for (let i = 0; i <= list.length; i++) {
          if (emitsAt.includes(i) || i === list.length) {
            written.push(...agg.emit(T0).deltas);
            checkpoint = { state: JSON.parse(JSON.stringify(agg.snapshot())) as typeof checkpoint.state, next: i };
          }
          if (restores[0] === i) {
            restores = restores.slice(1);
            // Crash: the progress since the checkpoint is lost; replay it from the checkpoint.
            agg = createPartitionAggregator(settings, checkpoint.state, T0);
            for (let j = checkpoint.next; j < i; j++) agg.ingest(list[j] as PartialEnvelope, T0);
          }
          if (i < list.length) agg.ingest(list[i] as PartialEnvelope, T0);
        }
        expect(totals(written)).toEqual(totals(expected));
        for (const [group, values] of kept(written)) expect(values.size, group).toBeLessThanOrEqual(3);
      }),
      { numRuns: 200 },
    );
  });
});
