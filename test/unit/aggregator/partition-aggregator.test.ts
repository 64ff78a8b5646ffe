import { describe, expect, it } from 'vitest';
import {
  addToPartial,
  createWatermarkTracker,
  emptyPartial,
  hash64,
  isWindowFinal,
  mergePartialInto,
  partialsEqual,
  type PartialEnvelope,
  type PartialRow,
} from '../../../shared/algebra/index.ts';
import { createPartitionAggregator } from '../../../core/aggregator/partition-aggregator.ts';
import { decodeInserts, decodeLegacyEmission, encodeInserts } from '../../../core/aggregator/checkpoint.ts';
import { encodeLegacyEmission } from '../../support/legacy-checkpoint.ts';
import { dimsKeyOf, isEmptyEmission, type DeltaRow } from '../../../core/aggregator/emission.ts';
import { rng } from '../../support/prng.ts';

const W = 60_000;
const T0 = 1_800_000_000_000; // window-aligned

function row(windowStartMs: number, events: number, users: string[] = [], dims: Array<[string, string]> = [['country', 'DE']]): PartialRow {
  const partial = emptyPartial();
  for (let i = 0; i < events; i++) addToPartial(partial, { value: i, ...(users.length ? { user: hash64(users[i % users.length]!) } : {}) });
  return { windowStartMs, windowSizeMs: W, site: 's', event: 'e', dimensions: dims, partial };
}

function envelope(sourceId: string, sequence: number, watermarkMs: number, rows: PartialRow[]): PartialEnvelope {
  return { version: 1, sourceId, sequence, watermarkMs, createdAtMs: watermarkMs, rows };
}

const settings = { allowedLatenessMs: 5_000, correctionHorizonMs: 3_600_000, idleTimeoutMs: 30_000 };

describe('partition aggregator', () => {
  it('merges rows of the same cell into one delta and drains them on emit', () => {
    const agg = createPartitionAggregator(settings);
    agg.ingest(envelope('a', 1, T0, [row(T0, 3, ['u1'])]), T0);
    agg.ingest(envelope('b', 1, T0, [row(T0, 4, ['u2']), row(T0, 1, [], [['country', 'FR']])]), T0);
    const e = agg.emit(T0 + 1);
    expect(e.deltas).toHaveLength(2);
    const de = e.deltas.find((d) => d.dimsKey === 'country=DE');
    expect(de?.partial.count).toBe(7);
    expect(e.statuses).toEqual([{ windowStartMs: T0, windowSizeMs: W, status: 'provisional', watermarkMs: T0, finalizedAtMs: undefined }]);
    expect(agg.emit(T0 + 2).deltas).toHaveLength(0);
  });

  it('counts pending cells until an emission drains them (the EMIT_MAX_ROWS bound)', () => {
    const agg = createPartitionAggregator(settings);
    agg.ingest(envelope('a', 1, T0, [row(T0, 1), row(T0, 1, [], [['country', 'FR']]), row(T0 + W, 1)]), T0);
    agg.ingest(envelope('a', 2, T0, [row(T0, 5)]), T0);
    expect(agg.pendingCells()).toBe(3);
    agg.emit(T0);
    expect(agg.pendingCells()).toBe(0);
  });

  it('records the partition watermark once per minute it enters, also when no window row is written', () => {
    const agg = createPartitionAggregator(settings);
    agg.ingest(envelope('a', 1, T0 + 10_000, [row(T0, 1)]), T0);
    expect(agg.emit(T0).progressMs).toBe(T0 + 10_000);
    // Heartbeats only (edges gone quiet): no deltas, no statuses once the window is final...
    agg.ingest(envelope('a', 2, T0 + W + 30_000, []), T0);
    const first = agg.emit(T0);
    expect(first.statuses.map((s) => s.status)).toEqual(['final']);
    expect(first.progressMs).toBe(T0 + W + 30_000);
    agg.ingest(envelope('a', 3, T0 + W + 50_000, []), T0);
    const sameMinute = agg.emit(T0);
    expect(sameMinute.progressMs).toBeUndefined();
    expect(isEmptyEmission(sameMinute)).toBe(true);
    // ...yet each new minute of watermark is still reported, and makes the emission worth writing.
    agg.ingest(envelope('a', 4, T0 + 3 * W + 1, []), T0);
    const later = agg.emit(T0);
    expect(later.deltas).toEqual([]);
    expect(later.statuses).toEqual([]);
    expect(later.progressMs).toBe(T0 + 3 * W + 1);
    expect(isEmptyEmission(later)).toBe(false);
    // Checkpoints of the pre-ADR 0008 form keep it, and those written before it existed still decode.
    const { deltas, rest } = encodeLegacyEmission(later);
    expect(decodeLegacyEmission(deltas, rest).progressMs).toBe(T0 + 3 * W + 1);
    const legacy = JSON.stringify({ statuses: [], late: [], watermarkMs: T0 });
    expect(decodeLegacyEmission(deltas, legacy).progressMs).toBeUndefined();
  });

  it('drops a replayed (source, sequence) and says why', () => {
    const agg = createPartitionAggregator(settings);
    expect(agg.ingest(envelope('a', 5, T0, [row(T0, 1)]), T0)).toEqual({ kind: 'ok', rows: 1, late: 0 });
    expect(agg.ingest(envelope('a', 5, T0, [row(T0, 1)]), T0)).toEqual({ kind: 'duplicate', reason: 'sequence_already_seen', lastSequence: 5 });
    expect(agg.ingest(envelope('a', 4, T0, [row(T0, 1)]), T0).kind).toBe('duplicate');
    expect(agg.emit(T0).deltas[0]?.partial.count).toBe(1);
  });

  it('finalizes a window exactly when the watermark reaches end + allowed lateness', () => {
    const agg = createPartitionAggregator(settings);
    agg.ingest(envelope('a', 1, T0, [row(T0, 1)]), T0);
    agg.emit(T0);
    agg.ingest(envelope('a', 2, T0 + W + settings.allowedLatenessMs - 1, []), T0);
    expect(agg.emit(T0).statuses).toEqual([]);
    agg.ingest(envelope('a', 3, T0 + W + settings.allowedLatenessMs, []), T0);
    const e = agg.emit(T0 + 10);
    expect(e.statuses).toEqual([{ windowStartMs: T0, windowSizeMs: W, status: 'final', watermarkMs: T0 + W + 5_000, finalizedAtMs: T0 + 10 }]);
    expect(agg.openWindows()).toBe(0);
  });

  it('the slowest active source holds the watermark back; an idle one stops doing so', () => {
    const agg = createPartitionAggregator(settings);
    agg.ingest(envelope('slow', 1, T0, [row(T0, 1)]), T0);
    agg.ingest(envelope('fast', 1, T0 + 10 * W, [row(T0, 1)]), T0);
    expect(agg.watermark(T0)).toBe(T0);
    agg.emit(T0);
    expect(agg.openWindows()).toBe(1);
    // 'slow' says nothing for longer than the idle timeout; 'fast' keeps reporting.
    agg.ingest(envelope('fast', 2, T0 + 10 * W, []), T0 + 31_000);
    expect(agg.watermark(T0 + 31_000)).toBe(T0 + 10 * W);
    expect(agg.emit(T0 + 31_000).statuses[0]?.status).toBe('final');
  });

  it('turns partials for a final window into corrections, and beyond the horizon into late rows', () => {
    const agg = createPartitionAggregator(settings);
    agg.ingest(envelope('a', 1, T0, [row(T0, 2)]), T0);
    agg.emit(T0);
    agg.ingest(envelope('a', 2, T0 + 2 * W, []), T0);
    expect(agg.emit(T0).statuses[0]?.status).toBe('final');

    agg.ingest(envelope('b', 1, T0 + 2 * W, [row(T0, 3)]), T0);
    const correction = agg.emit(T0);
    expect(correction.deltas[0]?.partial.count).toBe(3);
    expect(correction.statuses[0]?.status).toBe('corrected');

    agg.ingest(envelope('a', 3, T0 + 2 * W + settings.correctionHorizonMs, []), T0);
    agg.ingest(envelope('b', 2, T0 + 2 * W + settings.correctionHorizonMs, []), T0);
    agg.ingest(envelope('b', 3, T0 + 2 * W + settings.correctionHorizonMs, [row(T0, 4)]), T0);
    const late = agg.emit(T0);
    expect(late.deltas).toEqual([]);
    expect(late.late).toMatchObject([{ windowStartMs: T0, events: 4, reason: 'beyond_correction_horizon', sourceId: 'b', sequence: 3 }]);
  });

  it('resumes from a snapshot with the same watermark, windows and sequences', () => {
    const agg = createPartitionAggregator(settings);
    agg.ingest(envelope('a', 7, T0 + W, [row(T0, 1)]), T0);
    agg.emit(T0);
    const restored = createPartitionAggregator(settings, JSON.parse(JSON.stringify(agg.snapshot())));
    expect(restored.watermark(T0)).toBe(T0 + W);
    expect(restored.ingest(envelope('a', 7, T0 + W, [row(T0, 1)]), T0).kind).toBe('duplicate');
    expect(restored.openWindows()).toBe(1);
  });
});

// Reference for how rows become cells, as the aggregator was first written: one string key
// `window ␞ site ␞ event ␞ dimsKey` per row, every row classified on its own. The aggregator's
// indexes must emit exactly what this emits, including when two tuples spell the same key.
function referenceCells(settings: { allowedLatenessMs: number; correctionHorizonMs: number; idleTimeoutMs: number }) {
  const tracker = createWatermarkTracker({ idleTimeoutMs: settings.idleTimeoutMs });
  const final = new Map<number, boolean>();
  const lastSequence = new Map<string, number>();
  let pending = new Map<string, DeltaRow>();
  let late: Array<{ dimsKey: string; events: number }> = [];
  return {
    ingest(e: PartialEnvelope, nowMs: number): void {
      const seen = lastSequence.get(e.sourceId);
      if (seen !== undefined && e.sequence <= seen) return;
      lastSequence.set(e.sourceId, e.sequence);
      const wm = tracker.current(nowMs);
      for (const row of e.rows) {
        const end = row.windowStartMs + row.windowSizeMs;
        const dimsKey = dimsKeyOf(row.dimensions);
        if (wm !== undefined && wm > end + settings.correctionHorizonMs) {
          late.push({ dimsKey, events: row.partial.count });
          continue;
        }
        if (!final.has(row.windowStartMs)) final.set(row.windowStartMs, isWindowFinal(end, wm, settings.allowedLatenessMs));
        const key = `${row.windowStartMs}\u001e${row.site}\u001e${row.event}\u001e${dimsKey}`;
        let delta = pending.get(key);
        if (!delta) {
          delta = { site: row.site, event: row.event, windowStartMs: row.windowStartMs, windowSizeMs: row.windowSizeMs, dims: row.dimensions.map(([k, v]) => [k, v]), dimsKey, partial: emptyPartial() };
          pending.set(key, delta);
        }
        mergePartialInto(delta.partial, row.partial);
      }
      tracker.observe(e.sourceId, e.watermarkMs, nowMs);
    },
    emit(nowMs: number): { deltas: DeltaRow[]; late: Array<{ dimsKey: string; events: number }> } {
      const wm = tracker.current(nowMs);
      for (const [start] of final) {
        if (isWindowFinal(start + W, wm, settings.allowedLatenessMs)) final.set(start, true);
        if (final.get(start) && wm !== undefined && wm > start + W + settings.correctionHorizonMs) final.delete(start);
      }
      const out = { deltas: [...pending.values()], late };
      pending = new Map();
      late = [];
      return out;
    },
  };
}

function expectSameDeltas(actual: DeltaRow[], expected: DeltaRow[]): void {
  const plain = (ds: DeltaRow[]) => ds.map(({ partial, ...d }) => ({ ...d, count: partial.count, sum: partial.sum, min: partial.min, max: partial.max }));
  expect(plain(actual)).toEqual(plain(expected));
  actual.forEach((d, i) => expect(partialsEqual(d.partial, (expected[i] as DeltaRow).partial)).toBe(true));
}

describe('partition aggregator cells', () => {
  // Strings chosen so that different tuples spell the same cell key: a separator inside a site,
  // event or value, or '=' inside a dimension name.
  const SITES = ['s', 'x', 's\u001ee', 'a.example'];
  const EVENTS = ['e', 'e\u001ex', 'page', 'x'];
  const DIMS: Array<Array<[string, string]>> = [
    [],
    [['country', 'DE']],
    [['country', 'FR']],
    [['a=b', 'c']],
    [['a', 'b=c']],
    [['k', 'v\u001fk2=v2']],
    [['k', 'v'], ['k2', 'v2']],
    [['country', 'DE'], ['device', 'mobile'], ['path', '/p/1']],
    [['country', 'DE'], ['path', '/p/1']],
  ];

  function randomRun(seed: number, dirty: boolean): { envelopes: PartialEnvelope[]; emitAfter: Set<number> } {
    const rand = rng(seed);
    const pick = <T>(xs: T[], cleanCount: number): T => xs[Math.floor(rand() * (dirty ? xs.length : cleanCount))] as T;
    const envelopes: PartialEnvelope[] = [];
    const emitAfter = new Set<number>();
    const sequence = new Map<string, number>();
    let wm = T0;
    for (let i = 0; i < 60; i++) {
      const source = ['a', 'b', 'c'][Math.floor(rand() * 3)]!;
      const seq = (sequence.get(source) ?? 0) + (rand() < 0.05 ? 0 : 1); // now and then a replay
      sequence.set(source, seq);
      wm += Math.floor(rand() * 20_000);
      const rows: PartialRow[] = [];
      const n = Math.floor(rand() * 12);
      for (let r = 0; r < n; r++) {
        // Mostly the current window, sometimes older ones (corrections, late rows), interleaved.
        const back = rand() < 0.7 ? 0 : Math.floor(rand() * 5);
        const start = Math.floor((wm - back * W) / W) * W;
        const users = Array.from({ length: Math.floor(rand() * 4) }, () => `u${Math.floor(rand() * 50)}`);
        const base = row(start, 1 + Math.floor(rand() * 3), users, pick(DIMS, 3));
        rows.push({ ...base, site: pick(SITES, 2), event: pick(EVENTS, 1) });
      }
      envelopes.push(envelope(source, seq, wm, rows));
      if (rand() < 0.25) emitAfter.add(i);
    }
    return { envelopes, emitAfter };
  }

  it.each([
    ['clean strings', false],
    ['strings that spell colliding keys', true],
  ])('emits the same deltas and late rows as one string key per row (%s)', (_name, dirty) => {
    // Rows reach 5 windows back: the cardinality cap's window bound is not what this compares.
    const s = { allowedLatenessMs: 5_000, correctionHorizonMs: 3 * W, idleTimeoutMs: 30_000, cardinalityCapWindows: 1_000 };
    for (let seed = 1; seed <= 40; seed++) {
      const { envelopes, emitAfter } = randomRun(seed, dirty);
      const agg = createPartitionAggregator(s);
      const ref = referenceCells(s);
      envelopes.forEach((e, i) => {
        agg.ingest(e, T0);
        ref.ingest(e, T0);
        if (emitAfter.has(i) || i === envelopes.length - 1) {
          const got = agg.emit(T0);
          const want = ref.emit(T0);
          expectSameDeltas(got.deltas, want.deltas);
          expect(got.late.map((l) => ({ dimsKey: l.dimsKey, events: l.events }))).toEqual(want.late);
        }
      });
    }
  });

  it('merges tuples that spell the same key even when the clean one came first in the epoch', () => {
    const agg = createPartitionAggregator(settings);
    agg.ingest(envelope('a', 1, T0, [{ ...row(T0, 2), site: 's', event: 'x\u001ee' }]), T0);
    agg.ingest(envelope('a', 2, T0, [{ ...row(T0, 3), site: 's\u001ex', event: 'e' }]), T0);
    const e = agg.emit(T0);
    expect(e.deltas).toHaveLength(1);
    expect(e.deltas[0]).toMatchObject({ site: 's', event: 'x\u001ee', dimsKey: 'country=DE' });
    expect(e.deltas[0]?.partial.count).toBe(5);
    // The next epoch starts over with exact tuples and still keeps them apart from clean ones.
    agg.ingest(envelope('a', 3, T0, [row(T0, 1), { ...row(T0, 1), site: 'other' }]), T0);
    expect(agg.emit(T0).deltas.map((d) => d.site)).toEqual(['s', 'other']);
  });

  it('keeps no reference to the ingested envelope', () => {
    const agg = createPartitionAggregator(settings);
    const r = row(T0, 2, ['u1'], [['country', 'DE'], ['path', '/a']]);
    agg.ingest(envelope('a', 1, T0, [r]), T0);
    (r.dimensions[0] as [string, string])[1] = 'XX';
    r.dimensions.push(['zzz', '1']);
    addToPartial(r.partial, { user: hash64('u2'), value: 99 });
    const [d] = agg.emit(T0).deltas;
    expect(d?.dims).toEqual([['country', 'DE'], ['path', '/a']]);
    expect(d?.dimsKey).toBe('country=DE\u001fpath=/a');
    expect(d?.partial.count).toBe(2);
    expect(d?.partial.max).toBe(1);
  });

  it('stays exact across emissions when more tuples are seen than its index remembers', () => {
    // 30,000 paths in one window: above the default cardinality cap, which is not what this tests.
    const agg = createPartitionAggregator({ ...settings, cardinalityCap: 100_000 });
    const rowsOf = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => row(T0, 1, [], [['path', `/p/${from + i}`]]));
    let seq = 0;
    const emitted: DeltaRow[][] = [];
    for (const [from, to] of [[0, 25_000], [20_000, 30_000], [0, 5]] as const) {
      agg.ingest(envelope('a', ++seq, T0, rowsOf(from, to)), T0);
      agg.ingest(envelope('b', ++seq, T0, rowsOf(from, to)), T0);
      emitted.push(agg.emit(T0).deltas);
    }
    for (const [i, [from, to]] of ([[0, 25_000], [20_000, 30_000], [0, 5]] as const).entries()) {
      const deltas = emitted[i]!;
      expect(deltas).toHaveLength(to - from);
      deltas.forEach((d, j) => {
        expect(d.dimsKey).toBe(`path=/p/${from + j}`);
        expect(d.dims).toEqual([['path', `/p/${from + j}`]]);
        expect(d.partial.count).toBe(2);
      });
    }
  });
});

describe('checkpoint inserts blob', () => {
  it('round-trips parts byte for byte and refuses a damaged blob with a clear error', () => {
    const parts = [
      { table: 'agg_minute', rows: 2, bytes: new Uint8Array([1, 2, 3, 250]) },
      { table: 'partition_progress', rows: 1, bytes: new Uint8Array(300).fill(7) },
      { table: 'window_status', rows: 0, bytes: new Uint8Array(0) },
    ];
    const blob = encodeInserts({ parts });
    expect(decodeInserts(blob)).toEqual({ parts });
    expect(decodeInserts(encodeInserts({ parts: [] }))).toEqual({ parts: [] });
    expect(() => decodeInserts(blob.subarray(0, blob.length - 1))).toThrow(/checkpoint inserts are corrupt at byte \d+/);
    expect(() => decodeInserts(new Uint8Array([...blob, 0]))).toThrow(/bytes after the last part/);
  });
});

describe('partition aggregator: forged heartbeats do not pin the watermark (issue #10 finding 1)', () => {
  const guarded = { ...settings, sourceDataTimeoutMs: 30_000 };
  const DELAY = 4_300;

  /** An edge with data every 10 s and a forger's heartbeats an hour behind, from `from` to `to`. */
  function traffic(agg: ReturnType<typeof createPartitionAggregator>, from: number, to: number, seq: { edge: number; forger: number }): void {
    for (let now = from; now <= to; now += 10_000) {
      agg.ingest(envelope('forger', ++seq.forger, now - 3_600_000, []), now);
      agg.ingest(envelope('edge', ++seq.edge, now - DELAY, [row(Math.floor((now - DELAY) / W) * W, 1)]), now);
    }
  }

  it('closes windows on time while a source that never sent data heartbeats an hour behind', () => {
    const agg = createPartitionAggregator(guarded);
    const seq = { edge: 0, forger: 0 };
    traffic(agg, T0 + 10_000, T0 + 70_000, seq);
    expect(agg.watermark(T0 + 70_000)).toBe(T0 + 70_000 - DELAY);
    const statuses = agg.emit(T0 + 70_000).statuses;
    expect(statuses.find((s) => s.windowStartMs === T0)?.status).toBe('final');
  });

  it('still holds it back for a source whose data stopped, for SOURCE_DATA_TIMEOUT_MS only', () => {
    const agg = createPartitionAggregator(guarded);
    agg.ingest(envelope('stopped', 1, T0 + 1_000, [row(T0, 1)]), T0 + 5_000);
    const seq = { edge: 0, forger: 0 };
    traffic(agg, T0 + 10_000, T0 + 30_000, seq);
    agg.ingest(envelope('stopped', 2, T0 + 1_000, []), T0 + 30_000);
    expect(agg.watermark(T0 + 30_000)).toBe(T0 + 1_000);
    traffic(agg, T0 + 40_000, T0 + 70_000, seq);
    agg.ingest(envelope('stopped', 3, T0 + 1_000, []), T0 + 70_000);
    expect(agg.watermark(T0 + 70_000)).toBe(T0 + 70_000 - DELAY);
  });

  it('a restore after downtime keeps which sources hold it: the forger and a stopped source stay ignored', () => {
    const agg = createPartitionAggregator(guarded);
    agg.ingest(envelope('stopped', 1, T0 + 1_000, [row(T0, 1)]), T0);
    const seq = { edge: 0, forger: 0 };
    traffic(agg, T0 + 10_000, T0 + 60_000, seq);
    agg.ingest(envelope('stopped', 2, T0 + 1_000, []), T0 + 60_000);
    agg.emit(T0 + 60_000);
    const restored = createPartitionAggregator(guarded, JSON.parse(JSON.stringify(agg.snapshot())), T0 + 600_000);
    expect(restored.watermark(T0 + 600_000)).toBe(T0 + 60_000 - DELAY);
    // The backlog replays: the forger's and the stopped source's envelopes come first.
    restored.ingest(envelope('forger', ++seq.forger, T0 - 3_000_000, []), T0 + 600_001);
    restored.ingest(envelope('stopped', 3, T0 + 1_000, []), T0 + 600_001);
    restored.ingest(envelope('edge', ++seq.edge, T0 + 80_000, [row(T0 + W, 1)]), T0 + 600_002);
    expect(restored.watermark(T0 + 600_002)).toBe(T0 + 80_000);
  });
});
