import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  SKETCH_GAMMA,
  SKETCH_KEY_BIAS,
  SKETCH_MAX_BINS,
  SKETCH_MIN_INDEXABLE,
  SKETCH_RELATIVE_ACCURACY,
  createSketch,
  sketchAdd,
  sketchBinCount,
  sketchCount,
  sketchEquals,
  sketchFromBins,
  sketchKey,
  sketchKeyValue,
  sketchMerge,
  sketchMergeInto,
  sketchQuantile,
  sketchToBins,
  type QuantileSketch,
} from '../../../shared/algebra/index.ts';
import { rng } from '../../support/prng.ts';


function logNormal(n: number, seed: number, mu: number, sigma: number): number[] {
  const u = rng(seed);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    // Box–Muller; 1 − u() avoids log(0).
    const z = Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
    out.push(Math.exp(mu + sigma * z));
  }
  return out;
}

function pareto(n: number, seed: number, scale: number, shape: number): number[] {
  const u = rng(seed);
  return Array.from({ length: n }, () => scale / Math.pow(1 - u(), 1 / shape));
}

function sketchOf(values: number[]): QuantileSketch {
  const s = createSketch();
  for (const v of values) sketchAdd(s, v);
  return s;
}

/** The order statistic the lower-rank rule targets: sorted[floor(q·(n−1))]. */
function exactQuantile(sorted: number[], q: number): number {
  return sorted[Math.floor(q * (sorted.length - 1))] as number;
}

function relativeError(estimate: number, exact: number): number {
  return exact === 0 ? Math.abs(estimate) : Math.abs(estimate - exact) / Math.abs(exact);
}

// α plus float slack: log/pow at a bin edge can land one ulp on the other side.
const BOUND = SKETCH_RELATIVE_ACCURACY * (1 + 1e-9);

describe('key mapping', () => {
  it('uses the documented constants', () => {
    expect(SKETCH_GAMMA).toBe(1.01 / 0.99);
    expect(SKETCH_KEY_BIAS).toBe(1 + Math.ceil(-Math.log(SKETCH_MIN_INDEXABLE) / Math.log(SKETCH_GAMMA)));
  });

  it('is monotone, ≥ 1 above MIN_INDEXABLE, 0 around zero, symmetric, and fits Int32', () => {
    expect(sketchKey(0)).toBe(0);
    expect(sketchKey(SKETCH_MIN_INDEXABLE)).toBe(0);
    expect(sketchKey(-SKETCH_MIN_INDEXABLE)).toBe(0);
    expect(sketchKey(SKETCH_MIN_INDEXABLE * 1.0000001)).toBeGreaterThanOrEqual(1);
    expect(sketchKey(Number.MAX_VALUE)).toBeLessThan(2 ** 31);
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.double({ noNaN: true, noDefaultInfinity: true }), (a, b) => {
        if (a <= b) expect(sketchKey(a)).toBeLessThanOrEqual(sketchKey(b));
        expect(sketchKey(-a) === -sketchKey(a)).toBe(true);
      }),
    );
  });

  it('maps every value to a representative within α', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e300, max: 1e300 }), (x) => {
        fc.pre(Math.abs(x) > SKETCH_MIN_INDEXABLE);
        expect(relativeError(sketchKeyValue(sketchKey(x)), x)).toBeLessThanOrEqual(BOUND);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('sketchQuantile accuracy on skewed data (10^5 values)', () => {
  const cases: Array<[string, number[]]> = [
    ['log-normal(μ=3, σ=1.5)', logNormal(100_000, 42, 3, 1.5)],
    ['pareto(xm=1, a=1.2)', pareto(100_000, 7, 1, 1.2)],
    ['log-normal with negatives', logNormal(100_000, 9, 0, 2).map((v, i) => (i % 3 === 0 ? -v : v))],
  ];
  it.each(cases)('%s: p50/p90/p95/p99 within α of the exact order statistic', (name, values) => {
    const sketch = sketchOf(values);
    const sorted = [...values].sort((a, b) => a - b);
    let maxError = 0;
    const report: string[] = [];
    for (const q of [0, 0.5, 0.9, 0.95, 0.99, 1]) {
      const est = sketchQuantile(sketch, q) as number;
      const err = relativeError(est, exactQuantile(sorted, q));
      maxError = Math.max(maxError, err);
      report.push(`p${q * 100}=${(err * 100).toFixed(4)}%`);
      expect(err).toBeLessThanOrEqual(BOUND);
    }
    console.log(`sketch ${name}: ${report.join(' ')} max_relative_error=${(maxError * 100).toFixed(4)}% bins=${sketchBinCount(sketch)}`);
  });

  it('holds for every q on arbitrary data', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e12, max: 1e12 }), { minLength: 1, maxLength: 300 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (values, q) => {
          const exact = exactQuantile([...values].sort((a, b) => a - b), q);
          const est = sketchQuantile(sketchOf(values), q) as number;
          if (Math.abs(exact) <= SKETCH_MIN_INDEXABLE) expect(est).toBe(0);
          else expect(relativeError(est, exact)).toBeLessThanOrEqual(BOUND);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('sketch basics', () => {
  it('is undefined when empty and rejects bad q, values and counts', () => {
    const s = createSketch();
    expect(sketchQuantile(s, 0.5)).toBeUndefined();
    expect(sketchCount(s)).toBe(0);
    expect(() => sketchQuantile(s, 1.5)).toThrow(RangeError);
    expect(() => sketchQuantile(s, Number.NaN)).toThrow(RangeError);
    expect(() => sketchAdd(s, Number.NaN)).toThrow(RangeError);
    expect(() => sketchAdd(s, Number.POSITIVE_INFINITY)).toThrow(RangeError);
    expect(() => sketchAdd(s, 1, 0)).toThrow(RangeError);
    expect(() => sketchAdd(s, 1, 1.5)).toThrow(RangeError);
  });

  it('counts weighted adds and round-trips bins', () => {
    const s = createSketch();
    sketchAdd(s, 10, 5);
    sketchAdd(s, -3);
    sketchAdd(s, 0);
    expect(sketchCount(s)).toBe(7);
    const bins = sketchToBins(s);
    expect(bins.key).toEqual([sketchKey(-3), 0, sketchKey(10)]);
    expect(bins.count).toEqual([1, 1, 5]);
    expect(sketchEquals(sketchFromBins(bins), s)).toBe(true);
    expect(sketchQuantile(s, 0)).toBeCloseTo(-3, 1);
    expect(sketchQuantile(s, 1)).toBeCloseTo(10, 0);
  });

  it('merges by adding bins, in any order', () => {
    const part = fc.array(fc.integer({ min: -1_000_000, max: 1_000_000 }), { maxLength: 200 }).map(sketchOf);
    fc.assert(
      fc.property(part, part, part, (a, b, c) => {
        expect(sketchEquals(sketchMerge(a, b), sketchMerge(b, a))).toBe(true);
        expect(sketchEquals(sketchMerge(sketchMerge(a, b), c), sketchMerge(a, sketchMerge(b, c)))).toBe(true);
        expect(sketchCount(sketchMerge(a, b))).toBe(sketchCount(a) + sketchCount(b));
      }),
      { numRuns: 100 },
    );
  });
});

describe('bounded bins', () => {
  // Values γ^i for a wide i range: one bin per value, far more than SKETCH_MAX_BINS keys.
  const wide = (from: number, to: number): number[] => {
    const out: number[] = [];
    for (let i = from; i < to; i++) out.push(Math.pow(SKETCH_GAMMA, i) * 1.001);
    return out;
  };

  it('collapses the lowest keys, keeps the count, and keeps upper quantiles accurate', () => {
    const values = wide(-1000, 6000);
    const s = sketchOf(values);
    expect(sketchBinCount(s)).toBe(SKETCH_MAX_BINS);
    expect(sketchCount(s)).toBe(values.length);
    const sorted = [...values].sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 0.99]) {
      expect(relativeError(sketchQuantile(s, q) as number, exactQuantile(sorted, q))).toBeLessThanOrEqual(BOUND);
    }
    // The folded low tail reads back as the lowest kept bin, i.e. too high.
    expect(sketchQuantile(s, 0) as number).toBeGreaterThan(sorted[0] as number);
  });

  it('collapse is merge-order independent (split then merge equals the whole)', () => {
    const bins = fc.uniqueArray(fc.integer({ min: -6000, max: 6000 }), { minLength: 1, maxLength: 3000 }).map((keys) =>
      sketchFromBins({ key: keys, count: keys.map((k) => 1 + (Math.abs(k) % 5)) }),
    );
    fc.assert(
      fc.property(bins, bins, bins, (a, b, c) => {
        const left = sketchMerge(sketchMerge(a, b), c);
        const right = sketchMerge(a, sketchMerge(c, b));
        expect(sketchEquals(left, right)).toBe(true);
        expect(sketchBinCount(left)).toBeLessThanOrEqual(SKETCH_MAX_BINS);
      }),
      { numRuns: 30 },
    );
    const whole = sketchOf(wide(0, 9000));
    const merged = sketchMerge(sketchOf(wide(0, 3000)), sketchMerge(sketchOf(wide(6000, 9000)), sketchOf(wide(3000, 6000))));
    expect(sketchEquals(whole, merged)).toBe(true);
  });
});

describe('bin storage (sorted arrays)', () => {
  // Reference: the bin rules as written for a Map (add into the floor once collapsed, keep the
  // SKETCH_MAX_BINS highest keys and fold the rest into the lowest kept one).
  class ModelSketch {
    bins = new Map<number, number>();
    floor: number | null = null;
    add(key: number, count: number): void {
      const k = this.floor !== null && key < this.floor ? this.floor : key;
      this.bins.set(k, (this.bins.get(k) ?? 0) + count);
    }
    bound(): void {
      if (this.bins.size <= SKETCH_MAX_BINS) return;
      const keys = [...this.bins.keys()].sort((a, b) => a - b);
      const threshold = keys[keys.length - SKETCH_MAX_BINS] as number;
      let folded = 0;
      for (const key of keys) {
        if (key >= threshold) break;
        folded += this.bins.get(key) as number;
        this.bins.delete(key);
      }
      this.bins.set(threshold, (this.bins.get(threshold) as number) + folded);
      this.floor = threshold;
    }
    toBins(): { key: number[]; count: number[] } {
      const key = [...this.bins.keys()].sort((a, b) => a - b);
      return { key, count: key.map((k) => this.bins.get(k) as number) };
    }
  }

  // Sizes straddle the one-by-one insert (≤ 8 bins), the single-pass merge and the collapse.
  const binSet = fc.oneof(
    fc.uniqueArray(fc.integer({ min: -40, max: 40 }), { maxLength: 8 }),
    fc.uniqueArray(fc.integer({ min: -3000, max: 3000 }), { minLength: 9, maxLength: 2500 }),
  ).map((keys) => ({ key: keys, count: keys.map((k) => 1 + (Math.abs(k) % 7)) }));

  it('merges in any sequence give the bins of the reference model', () => {
    fc.assert(
      fc.property(fc.array(binSet, { minLength: 1, maxLength: 6 }), (parts) => {
        const model = new ModelSketch();
        const merged = createSketch();
        for (const part of parts) {
          const s = sketchFromBins(part);
          const m = new ModelSketch();
          part.key.forEach((k, i) => m.add(k, part.count[i] as number));
          m.bound();
          for (const [k, c] of m.bins) model.add(k, c);
          model.bound();
          sketchMergeInto(merged, s);
        }
        expect(sketchToBins(merged)).toEqual(model.toBins());
        expect(sketchCount(merged)).toBe(model.toBins().count.reduce((a, b) => a + b, 0));
      }),
      { numRuns: 60 },
    );
  });

  it('a sketch merged into an empty one is an independent copy', () => {
    const src = sketchFromBins({ key: [1, 5, 9], count: [1, 2, 3] });
    const copy = createSketch();
    sketchMergeInto(copy, src);
    sketchAdd(copy, 1e6);
    sketchMergeInto(copy, sketchFromBins({ key: [5, 7], count: [1, 1] }));
    expect(sketchToBins(src)).toEqual({ key: [1, 5, 9], count: [1, 2, 3] });
    expect(sketchCount(src)).toBe(6);
  });
});
