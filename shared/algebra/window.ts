/**
 * Tumbling event-time windows. All times are epoch milliseconds passed in by the caller:
 * the algebra never reads a clock.
 */

function checkSize(windowSizeMs: number, where: string): void {
  if (!Number.isSafeInteger(windowSizeMs) || windowSizeMs <= 0) {
    throw new RangeError(`${where}: window size must be a positive integer of milliseconds, got ${windowSizeMs}`);
  }
}

/**
 * Start of the window holding `eventTimeMs`: the largest multiple of the size that is ≤ the
 * time, also for times before 1970. Uses the exact float remainder rather than
 * Math.floor(t / size) so boundaries never round into the wrong window.
 * @throws RangeError for a non-positive/non-integer size or a non-finite time.
 * @example windowStart(Date.parse('2024-05-01T12:34:56Z'), 60_000) // 12:34:00
 */
export function windowStart(eventTimeMs: number, windowSizeMs: number): number {
  checkSize(windowSizeMs, 'windowStart');
  if (!Number.isFinite(eventTimeMs)) throw new RangeError(`windowStart: event time must be finite, got ${eventTimeMs}`);
  const r = eventTimeMs % windowSizeMs;
  const start = r < 0 ? eventTimeMs - r - windowSizeMs : eventTimeMs - r;
  return start === 0 ? 0 : start; // never −0
}

/**
 * Exclusive end of a window: an event at exactly this time belongs to the next window.
 * @throws RangeError for a non-positive/non-integer size.
 */
export function windowEnd(windowStartMs: number, windowSizeMs: number): number {
  checkSize(windowSizeMs, 'windowEnd');
  return windowStartMs + windowSizeMs;
}

/**
 * A window is final once the watermark has passed its end plus the allowed lateness; before
 * any watermark exists nothing is final.
 * @example isWindowFinal(end, tracker.current(now), 30_000)
 */
export function isWindowFinal(windowEndMs: number, watermarkMs: number | undefined, allowedLatenessMs: number): boolean {
  return watermarkMs !== undefined && watermarkMs >= windowEndMs + allowedLatenessMs;
}
