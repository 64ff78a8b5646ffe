import {
  createWatermarkTracker,
  emptyPartial,
  isWindowFinal,
  mergePartialInto,
  type PartialEnvelope,
  type WatermarkSnapshot,
} from '../algebra/index.ts';
import { dimsKeyOf, type DeltaRow, type Emission, type LateRow, type WindowStatusRow } from './emission.ts';

/** Partition progress (the watermark without window rows) is recorded at most once per this much watermark advance. */
const PROGRESS_EVERY_MS = 60_000;

export interface AggregatorSettings {
  allowedLatenessMs: number;
  correctionHorizonMs: number;
  idleTimeoutMs: number;
  /** Bound on remembered sources for (source, sequence) deduplication. */
  maxTrackedSources?: number;
}

interface WindowState {
  sizeMs: number;
  final: boolean;
  finalizedAtMs: number | undefined;
  /** A status row is owed for this window at the next emission. */
  dirty: boolean;
  corrected: boolean;
}

/** Everything needed to resume a partition exactly where its last checkpoint left it. */
export interface PartitionSnapshot {
  lastSequence: Array<[sourceId: string, sequence: number]>;
  watermark: WatermarkSnapshot;
  windows: Array<[startMs: number, sizeMs: number, final: boolean, finalizedAtMs: number | null, corrected: boolean]>;
}

export type IngestResult =
  | { kind: 'ok'; rows: number; late: number }
  | { kind: 'duplicate'; reason: 'sequence_already_seen'; lastSequence: number };

export interface PartitionAggregator {
  ingest(envelope: PartialEnvelope, nowMs: number): IngestResult;
  /** Drains the deltas gathered since the last call and decides which windows became final. */
  emit(nowMs: number): Emission;
  snapshot(): PartitionSnapshot;
  watermark(nowMs: number): number | undefined;
  openWindows(): number;
  /** Cells with a pending delta: what the next emission writes, and what memory holds until then. */
  pendingCells(): number;
}

/**
 * The aggregation state of one input partition. Emissions are deltas: the sum of all deltas of
 * a cell is its value, so a late partial inside the correction horizon is just one more delta.
 */
export function createPartitionAggregator(settings: AggregatorSettings, restore?: PartitionSnapshot, restoredAtMs?: number): PartitionAggregator {
  const maxSources = settings.maxTrackedSources ?? 100_000;
  const lastSequence = new Map<string, number>(restore?.lastSequence ?? []);
  const tracker = createWatermarkTracker({
    idleTimeoutMs: settings.idleTimeoutMs,
    ...(restore ? { restore: restore.watermark } : {}),
  });
  if (restore && restoredAtMs !== undefined) {
    // Last-seen times in a snapshot are the old process's clock: after downtime longer than the
    // idle timeout every source would count as idle and the first one to report would drive the
    // watermark alone while the backlog replays. A restore counts as having just heard from all.
    for (const s of tracker.sources(restoredAtMs)) tracker.observe(s.sourceId, s.watermarkMs, restoredAtMs);
  }
  const windows = new Map<number, WindowState>();
  for (const [start, sizeMs, final, finalizedAtMs, corrected] of restore?.windows ?? []) {
    windows.set(start, { sizeMs, final, finalizedAtMs: finalizedAtMs ?? undefined, dirty: false, corrected });
  }
  let pending = new Map<string, DeltaRow>();
  let late: LateRow[] = [];
  /** Minute (of watermark) last recorded as partition progress; in memory only: after a restore it is recorded again, harmlessly. */
  let progressMinute: number | undefined;

  // 'late' depends on the watermark alone (a function of the partition's input order), never on
  // when emissions happened to run, so a replay after a crash classifies every row the same way.
  function classify(start: number, sizeMs: number, wm: number | undefined): 'open' | 'correction' | 'late' {
    const end = start + sizeMs;
    if (wm !== undefined && wm > end + settings.correctionHorizonMs) return 'late';
    const known = windows.get(start);
    const final = known ? known.final : isWindowFinal(end, wm, settings.allowedLatenessMs);
    return final ? 'correction' : 'open';
  }

  return {
    ingest(envelope, nowMs) {
      const seen = lastSequence.get(envelope.sourceId);
      if (seen !== undefined && envelope.sequence <= seen) {
        return { kind: 'duplicate', reason: 'sequence_already_seen', lastSequence: seen };
      }
      lastSequence.delete(envelope.sourceId); // re-insert keeps the Map in recency order for eviction
      lastSequence.set(envelope.sourceId, envelope.sequence);
      if (lastSequence.size > maxSources) {
        const oldest = lastSequence.keys().next().value;
        if (oldest !== undefined) lastSequence.delete(oldest);
      }
      const wm = tracker.current(nowMs);
      let lateCount = 0;
      for (const row of envelope.rows) {
        const kind = classify(row.windowStartMs, row.windowSizeMs, wm);
        const dimsKey = dimsKeyOf(row.dimensions);
        if (kind === 'late') {
          lateCount++;
          late.push({
            site: row.site,
            event: row.event,
            windowStartMs: row.windowStartMs,
            dimsKey,
            events: row.partial.count,
            reason: 'beyond_correction_horizon',
            sourceId: envelope.sourceId,
            sequence: envelope.sequence,
            watermarkMs: wm,
            receivedAtMs: nowMs,
          });
          continue;
        }
        let state = windows.get(row.windowStartMs);
        if (!state) {
          state = { sizeMs: row.windowSizeMs, final: kind === 'correction', finalizedAtMs: kind === 'correction' ? nowMs : undefined, dirty: true, corrected: false };
          windows.set(row.windowStartMs, state);
        }
        state.dirty = true;
        if (kind === 'correction') state.corrected = true;
        const key = `${row.windowStartMs}\u001e${row.site}\u001e${row.event}\u001e${dimsKey}`;
        let delta = pending.get(key);
        if (!delta) {
          delta = {
            site: row.site,
            event: row.event,
            windowStartMs: row.windowStartMs,
            windowSizeMs: row.windowSizeMs,
            dims: row.dimensions.map(([k, v]) => [k, v]),
            dimsKey,
            partial: emptyPartial(),
          };
          pending.set(key, delta);
        }
        mergePartialInto(delta.partial, row.partial);
      }
      // The envelope's own watermark applies after its rows: they were flushed before it advanced.
      tracker.observe(envelope.sourceId, envelope.watermarkMs, nowMs);
      return { kind: 'ok', rows: envelope.rows.length - lateCount, late: lateCount };
    },

    emit(nowMs) {
      const wm = tracker.current(nowMs);
      const statuses: WindowStatusRow[] = [];
      for (const [start, state] of windows) {
        const end = start + state.sizeMs;
        if (!state.final && isWindowFinal(end, wm, settings.allowedLatenessMs)) {
          state.final = true;
          state.finalizedAtMs = nowMs;
          state.dirty = true;
        }
        if (state.dirty) {
          statuses.push({
            windowStartMs: start,
            windowSizeMs: state.sizeMs,
            status: state.final ? (state.corrected ? 'corrected' : 'final') : 'provisional',
            watermarkMs: wm,
            finalizedAtMs: state.finalizedAtMs,
          });
          state.dirty = false;
        }
        // Past the correction horizon a window can only produce late rows: forget it.
        if (state.final && wm !== undefined && wm > end + settings.correctionHorizonMs) windows.delete(start);
      }
      const emission: Emission = { deltas: [...pending.values()], statuses, late, watermarkMs: wm };
      if (wm !== undefined && (progressMinute === undefined || Math.floor(wm / PROGRESS_EVERY_MS) > progressMinute)) {
        progressMinute = Math.floor(wm / PROGRESS_EVERY_MS);
        emission.progressMs = wm;
      }
      pending = new Map();
      late = [];
      return emission;
    },

    snapshot() {
      return {
        lastSequence: [...lastSequence],
        watermark: tracker.snapshot(),
        windows: [...windows].map(([start, s]) => [start, s.sizeMs, s.final, s.finalizedAtMs ?? null, s.corrected]),
      };
    },

    watermark: (nowMs) => tracker.current(nowMs),
    openWindows: () => [...windows.values()].filter((w) => !w.final).length,
    pendingCells: () => pending.size + late.length,
  };
}
