import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { isWindowFinal, windowEnd, windowStart } from '../../../shared/algebra/index.ts';

const MINUTE = 60_000;

describe('windowStart / windowEnd', () => {
  it('puts an event exactly at a window end into the next window', () => {
    const start = Date.UTC(2024, 4, 1, 12, 34);
    const end = windowEnd(start, MINUTE);
    expect(end).toBe(start + MINUTE);
    expect(windowStart(start, MINUTE)).toBe(start);
    expect(windowStart(end - 1, MINUTE)).toBe(start);
    expect(windowStart(end, MINUTE)).toBe(end);
  });

  it('floors times before 1970 and odd sizes', () => {
    expect(windowStart(-1, MINUTE)).toBe(-MINUTE);
    expect(windowStart(-MINUTE, MINUTE)).toBe(-MINUTE);
    expect(Object.is(windowStart(-0, MINUTE), 0)).toBe(true);
    expect(windowStart(-MINUTE - 1, MINUTE)).toBe(-2 * MINUTE);
    expect(windowStart(10, 7)).toBe(7);
    expect(windowStart(-10, 7)).toBe(-14);
  });

  it('always returns the multiple of the size with start ≤ t < end', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 50), max: 2 ** 50 }),
        fc.integer({ min: 1, max: 7 * 24 * 3600 * 1000 }),
        (t, size) => {
          const start = windowStart(t, size);
          expect(start % size === 0).toBe(true);
          expect(start).toBeLessThanOrEqual(t);
          expect(t).toBeLessThan(windowEnd(start, size));
        },
      ),
    );
  });

  it('throws RangeError for an invalid size or time (programmer error)', () => {
    for (const size of [0, -60_000, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => windowStart(0, size)).toThrow(RangeError);
      expect(() => windowEnd(0, size)).toThrow(RangeError);
    }
    expect(() => windowStart(Number.NaN, MINUTE)).toThrow(RangeError);
  });
});

describe('isWindowFinal', () => {
  const end = Date.UTC(2024, 4, 1, 12, 35);
  const lateness = 30_000;

  it('is final exactly at watermark == end + lateness, not one ms before', () => {
    expect(isWindowFinal(end, end + lateness, lateness)).toBe(true);
    expect(isWindowFinal(end, end + lateness - 1, lateness)).toBe(false);
    expect(isWindowFinal(end, end + lateness + 1, lateness)).toBe(true);
  });

  it('is never final without a watermark, and zero lateness closes at the end', () => {
    expect(isWindowFinal(end, undefined, lateness)).toBe(false);
    expect(isWindowFinal(end, end, 0)).toBe(true);
    expect(isWindowFinal(end, end - 1, 0)).toBe(false);
  });
});
