/**
 * Event-time watermark over many sources (Arroyo's rule): each source's watermark only moves
 * forward; the combined watermark is the minimum over sources that are not idle; nothing is
 * known until sources have reported; and the combined value never moves backwards, so a
 * window declared final stays final.
 *
 * A watermark is a promise about data, so only sources that send data may hold it back: a
 * source holds it while it is not idle and sent rows within `dataTimeoutMs`. A source that only
 * ever sends heartbeats never holds it (a forged heartbeat an hour behind pinned every window
 * open), and one whose data stopped holds it at most `dataTimeoutMs` longer. Only when no source
 * holds it do quiet sources count: the minimum over non-idle sources that have sent data, so
 * the heartbeats of idle edges still close the last windows (docs/OPERATIONS.md "Watermark").
 */

/** JSON-serializable tracker state, stored in aggregator checkpoints. */
export interface WatermarkSnapshot {
  version: 1;
  /** Sorted by sourceId so equal states serialize identically. */
  sources: Array<{ sourceId: string; watermarkMs: number; lastSeenMs: number; lastDataMs?: number | null }>;
  /** Last combined watermark handed out, null before the first one. */
  currentMs: number | null;
}

/** One source as seen by the tracker. */
export interface SourceWatermark {
  sourceId: string;
  watermarkMs: number;
  lastSeenMs: number;
  /** Processing time of the source's last envelope with rows; null if it never sent any. */
  lastDataMs: number | null;
  idle: boolean;
  /** Not idle and sent data within the data timeout: its watermark bounds the combined one. */
  holding: boolean;
}

/** Combines per-source watermarks; see {@link createWatermarkTracker}. */
export interface WatermarkTracker {
  /**
   * Records a source's watermark seen at processing time `nowMs`; lower values are ignored.
   * `heartbeat`: the envelope carried no rows, so it does not make the source a data source.
   */
  observe(sourceId: string, watermarkMs: number, nowMs: number, kind?: 'data' | 'heartbeat'): void;
  /** The combined watermark at processing time `nowMs`, or undefined while unknown. */
  current(nowMs: number): number | undefined;
  /** Every source that has reported, sorted by id. */
  sources(nowMs: number): SourceWatermark[];
  /** State for a checkpoint; `restore` it to continue exactly where this left off. */
  snapshot(): WatermarkSnapshot;
}

interface SourceState {
  watermarkMs: number;
  lastSeenMs: number;
  lastDataMs: number | null;
}

function checkTime(value: number, what: string): void {
  if (!Number.isFinite(value)) throw new RangeError(`watermark tracker: ${what} must be a finite number, got ${value}`);
}

/**
 * Creates a tracker. A source is idle when `nowMs − lastSeenMs > idleTimeoutMs`; idle sources
 * stop holding the watermark back, and so do sources without rows for `dataTimeoutMs` (default:
 * never, i.e. any source that sent data once). With `expectedSources`, the watermark stays undefined until
 * each of them has reported, so a slow-starting edge cannot have its windows closed under it.
 * When every source is idle the watermark holds (it does not advance past the slowest source).
 * @throws RangeError for a negative or non-finite idle timeout, or a malformed snapshot.
 * @example
 * const wm = createWatermarkTracker({ idleTimeoutMs: 60_000, restore: checkpoint.watermarks });
 * wm.observe(envelope.sourceId, envelope.watermarkMs, now);
 * if (isWindowFinal(end, wm.current(now), latenessMs)) emitFinal(window);
 */
export function createWatermarkTracker(o: {
  idleTimeoutMs: number;
  dataTimeoutMs?: number;
  expectedSources?: string[];
  restore?: WatermarkSnapshot;
}): WatermarkTracker {
  const { idleTimeoutMs } = o;
  if (!(Number.isFinite(idleTimeoutMs) && idleTimeoutMs >= 0)) {
    throw new RangeError(`createWatermarkTracker: idleTimeoutMs must be a non-negative number, got ${idleTimeoutMs}`);
  }
  const dataTimeoutMs = o.dataTimeoutMs ?? Number.POSITIVE_INFINITY;
  if (!(dataTimeoutMs >= 0)) {
    throw new RangeError(`createWatermarkTracker: dataTimeoutMs must be a non-negative number, got ${dataTimeoutMs}`);
  }
  const expected = [...new Set(o.expectedSources ?? [])];
  const states = new Map<string, SourceState>();
  let last: number | undefined;

  if (o.restore !== undefined) {
    const snap = o.restore;
    if (snap.version !== 1 || !Array.isArray(snap.sources)) {
      throw new RangeError('createWatermarkTracker: restore is not a version 1 WatermarkSnapshot');
    }
    for (const s of snap.sources) {
      checkTime(s.watermarkMs, 'snapshot watermarkMs');
      checkTime(s.lastSeenMs, 'snapshot lastSeenMs');
      // Snapshots written before data was told apart from heartbeats: every source sent data.
      const lastDataMs = s.lastDataMs === undefined ? s.lastSeenMs : s.lastDataMs;
      if (lastDataMs !== null) checkTime(lastDataMs, 'snapshot lastDataMs');
      states.set(s.sourceId, { watermarkMs: s.watermarkMs, lastSeenMs: s.lastSeenMs, lastDataMs });
    }
    if (snap.currentMs !== null) {
      checkTime(snap.currentMs, 'snapshot currentMs');
      last = snap.currentMs;
    }
  }

  const isIdle = (s: SourceState, nowMs: number): boolean => nowMs - s.lastSeenMs > idleTimeoutMs;
  const isHolding = (s: SourceState, nowMs: number): boolean => !isIdle(s, nowMs) && s.lastDataMs !== null && nowMs - s.lastDataMs <= dataTimeoutMs;

  return {
    observe(sourceId, watermarkMs, nowMs, kind = 'data') {
      checkTime(watermarkMs, 'watermarkMs');
      checkTime(nowMs, 'nowMs');
      const s = states.get(sourceId);
      if (s === undefined) {
        states.set(sourceId, { watermarkMs, lastSeenMs: nowMs, lastDataMs: kind === 'data' ? nowMs : null });
        return;
      }
      // A replayed or reordered batch must not pull a source's watermark back.
      if (watermarkMs > s.watermarkMs) s.watermarkMs = watermarkMs;
      if (nowMs > s.lastSeenMs) s.lastSeenMs = nowMs;
      if (kind === 'data' && (s.lastDataMs === null || nowMs > s.lastDataMs)) s.lastDataMs = nowMs;
    },

    current(nowMs) {
      checkTime(nowMs, 'nowMs');
      if (states.size === 0) return last;
      for (const id of expected) if (!states.has(id)) return last;
      // The first non-empty of: holding sources; quiet data sources still alive; data sources;
      // any source (the last two only ever hold the value: `last` never moves back).
      let holdingMin = Number.POSITIVE_INFINITY;
      let quietMin = Number.POSITIVE_INFINITY;
      let dataMin = Number.POSITIVE_INFINITY;
      let allMin = Number.POSITIVE_INFINITY;
      for (const s of states.values()) {
        const wm = s.watermarkMs;
        if (wm < allMin) allMin = wm;
        if (s.lastDataMs === null) continue;
        if (wm < dataMin) dataMin = wm;
        if (isIdle(s, nowMs)) continue;
        if (wm < quietMin) quietMin = wm;
        if (nowMs - s.lastDataMs <= dataTimeoutMs && wm < holdingMin) holdingMin = wm;
      }
      // All idle: hold at the slowest source rather than jump ahead of anyone.
      const none = Number.POSITIVE_INFINITY;
      const candidate = holdingMin !== none ? holdingMin : quietMin !== none ? quietMin : dataMin !== none ? dataMin : allMin;
      if (last === undefined || candidate > last) last = candidate;
      return last;
    },

    sources(nowMs) {
      checkTime(nowMs, 'nowMs');
      return [...states.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([sourceId, s]) => ({ sourceId, watermarkMs: s.watermarkMs, lastSeenMs: s.lastSeenMs, lastDataMs: s.lastDataMs, idle: isIdle(s, nowMs), holding: isHolding(s, nowMs) }));
    },

    snapshot() {
      return {
        version: 1,
        sources: [...states.entries()]
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([sourceId, s]) => ({ sourceId, watermarkMs: s.watermarkMs, lastSeenMs: s.lastSeenMs, lastDataMs: s.lastDataMs })),
        currentMs: last ?? null,
      };
    },
  };
}
