import { describe, expect, it } from 'vitest';
import { addToPartial, emptyPartial, hash64, type PartialEnvelope, type PartialRow } from '../../../core/algebra/index.ts';
import { createPartitionAggregator } from '../../../core/aggregator/partition-aggregator.ts';
import { decodeEmission, encodeEmission } from '../../../core/aggregator/checkpoint.ts';
import { isEmptyEmission } from '../../../core/aggregator/emission.ts';

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
    // It survives the checkpoint codec, and checkpoints written before it existed still decode.
    const { deltas, rest } = encodeEmission(later);
    expect(decodeEmission(deltas, rest).progressMs).toBe(T0 + 3 * W + 1);
    const legacy = JSON.stringify({ statuses: [], late: [], watermarkMs: T0 });
    expect(decodeEmission(deltas, legacy).progressMs).toBeUndefined();
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
    agg.ingest(envelope('slow', 1, T0, []), T0);
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
