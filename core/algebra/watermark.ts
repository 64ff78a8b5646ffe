/**
 * Event-time watermark over many sources (Arroyo's rule): each source's watermark only moves
 * forward; the combined watermark is the minimum over sources that are not idle; nothing is
 * known until sources have reported; and the combined value never moves backwards, so a
 * window declared final stays final.
 */

/** JSON-serializable tracker state, stored in aggregator checkpoints. */
export interface WatermarkSnapshot {
  version: 1;
  /** Sorted by sourceId so equal states serialize identically. */
  sources: Array<{ sourceId: string; watermarkMs: number; lastSeenMs: number }>;
  /** Last combined watermark handed out, null before the first one. */
  currentMs: number | null;
}

/** One source as seen by the tracker. */
export interface SourceWatermark {
  sourceId: string;
  watermarkMs: number;
  lastSeenMs: number;
  idle: boolean;
}

/** Combines per-source watermarks; see {@link createWatermarkTracker}. */
export interface WatermarkTracker {
  /** Records a source's watermark seen at processing time `nowMs`; lower values are ignored. */
  observe(sourceId: string, watermarkMs: number, nowMs: number): void;
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
}

function checkTime(value: number, what: string): void {
  if (!Number.isFinite(value)) throw new RangeError(`watermark tracker: ${what} must be a finite number, got ${value}`);
}

/**
 * Creates a tracker. A source is idle when `nowMs − lastSeenMs > idleTimeoutMs`; idle sources
 * stop holding the watermark back. With `expectedSources`, the watermark stays undefined until
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
  expectedSources?: string[];
  restore?: WatermarkSnapshot;
}): WatermarkTracker {
  const { idleTimeoutMs } = o;
  if (!(Number.isFinite(idleTimeoutMs) && idleTimeoutMs >= 0)) {
    throw new RangeError(`createWatermarkTracker: idleTimeoutMs must be a non-negative number, got ${idleTimeoutMs}`);
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
      states.set(s.sourceId, { watermarkMs: s.watermarkMs, lastSeenMs: s.lastSeenMs });
    }
    if (snap.currentMs !== null) {
      checkTime(snap.currentMs, 'snapshot currentMs');
      last = snap.currentMs;
    }
  }

  const isIdle = (s: SourceState, nowMs: number): boolean => nowMs - s.lastSeenMs > idleTimeoutMs;

  return {
    observe(sourceId, watermarkMs, nowMs) {
      checkTime(watermarkMs, 'watermarkMs');
      checkTime(nowMs, 'nowMs');
      const s = states.get(sourceId);
      if (s === undefined) {
        states.set(sourceId, { watermarkMs, lastSeenMs: nowMs });
        return;
      }
      // A replayed or reordered batch must not pull a source's watermark back.
      if (watermarkMs > s.watermarkMs) s.watermarkMs = watermarkMs;
      if (nowMs > s.lastSeenMs) s.lastSeenMs = nowMs;
    },

    current(nowMs) {
      checkTime(nowMs, 'nowMs');
      if (states.size === 0) return last;
      for (const id of expected) if (!states.has(id)) return last;
      let activeMin = Number.POSITIVE_INFINITY;
      let allMin = Number.POSITIVE_INFINITY;
      for (const s of states.values()) {
        if (s.watermarkMs < allMin) allMin = s.watermarkMs;
        if (!isIdle(s, nowMs) && s.watermarkMs < activeMin) activeMin = s.watermarkMs;
      }
      // All idle: hold at the slowest source rather than jump ahead of anyone.
      const candidate = activeMin === Number.POSITIVE_INFINITY ? allMin : activeMin;
      if (last === undefined || candidate > last) last = candidate;
      return last;
    },

    sources(nowMs) {
      checkTime(nowMs, 'nowMs');
      return [...states.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([sourceId, s]) => ({ sourceId, watermarkMs: s.watermarkMs, lastSeenMs: s.lastSeenMs, idle: isIdle(s, nowMs) }));
    },

    snapshot() {
      return {
        version: 1,
        sources: [...states.entries()]
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([sourceId, s]) => ({ sourceId, watermarkMs: s.watermarkMs, lastSeenMs: s.lastSeenMs })),
        currentMs: last ?? null,
      };
    },
  };
}
