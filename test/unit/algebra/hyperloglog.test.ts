import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  HLL_MAX_RANK,
  HLL_REGISTERS,
  cloneHll,
  createHll,
  hash64,
  hllAdd,
  hllEquals,
  hllEstimate,
  hllFromRegisters,
  hllMerge,
  hllMergeInto,
  hllToRegisters,
  type HyperLogLog,
} from '../../../shared/algebra/index.ts';

function hllOf(keys: Iterable<string>): HyperLogLog {
  const h = createHll();
  for (const k of keys) hllAdd(h, hash64(k));
  return h;
}

function* range(prefix: string, from: number, to: number): Generator<string> {
  for (let i = from; i < to; i++) yield `${prefix}${i}`;
}

describe('hllAdd register layout', () => {
  it('uses the top 14 bits as index and leading zeros of the other 50 bits + 1 as rank', () => {
    const h = createHll();
    hllAdd(h, { hi: 0xffffffff, lo: 0xffffffff }); // index 16383, first tail bit set -> rank 1
    hllAdd(h, { hi: 0x00000000, lo: 0x00000000 }); // index 0, 50 zeros -> rank 51
    hllAdd(h, { hi: 0x00040000 | 0x00000001, lo: 0 }); // index 1, 17 zeros then a one -> rank 18
    hllAdd(h, { hi: 0x00080000, lo: 0x00008000 }); // index 2, 18 + 16 zeros -> rank 35
    expect(hllToRegisters(h)).toEqual({ index: [0, 1, 2, 16383], rank: [HLL_MAX_RANK, 18, 35, 1] });
  });
});

describe('hllEstimate accuracy (p = 14, standard error 0.81 %)', () => {
  // One run per magnitude; 2 % is ~2.5 standard errors.
  it.each([1_000, 10_000, 100_000, 1_000_000])('estimates %i distinct values within 2 percent', (n) => {
    const started = performance.now();
    const estimate = hllEstimate(hllOf(range('user-', 0, n)));
    const error = (estimate - n) / n;
    console.log(`hll n=${n} estimate=${estimate.toFixed(1)} relative_error=${(error * 100).toFixed(3)}% (${(performance.now() - started).toFixed(0)} ms)`);
    expect(Math.abs(error)).toBeLessThan(0.02);
  });

  it('is exactly 0 when empty and close to exact for tiny sets', () => {
    expect(hllEstimate(createHll())).toBe(0);
    for (const n of [1, 2, 10, 100]) {
      expect(Math.abs(hllEstimate(hllOf(range('tiny-', 0, n))) - n)).toBeLessThan(Math.max(0.5, n * 0.01));
    }
  });

  it('ignores duplicates', () => {
    const once = hllOf(range('d-', 0, 5000));
    const twice = hllOf([...range('d-', 0, 5000), ...range('d-', 0, 5000)]);
    expect(hllEquals(once, twice)).toBe(true);
  });
});

describe('hll merge', () => {
  it('of overlapping sets equals the sketch of the union (sparse and dense)', () => {
    const a = hllOf(range('m-', 0, 30_000));
    const b = hllOf(range('m-', 20_000, 50_000));
    const small = hllOf(range('m-', 0, 40)); // stays sparse
    const union = hllOf(range('m-', 0, 50_000));
    expect(hllEquals(hllMerge(a, b), union)).toBe(true);
    expect(hllEquals(hllMerge(b, a), union)).toBe(true);
    expect(hllEquals(hllMerge(small, union), union)).toBe(true);
    expect(hllEquals(hllMerge(union, small), union)).toBe(true);
    const relative = Math.abs(hllEstimate(hllMerge(a, b)) - 50_000) / 50_000;
    expect(relative).toBeLessThan(0.02);
  });

  it('is commutative, associative and idempotent on registers', () => {
    const sketch = fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 800 }).map((xs) => hllOf(xs.map(String)));
    fc.assert(
      fc.property(sketch, sketch, sketch, (a, b, c) => {
        expect(hllEquals(hllMerge(a, b), hllMerge(b, a))).toBe(true);
        expect(hllEquals(hllMerge(hllMerge(a, b), c), hllMerge(a, hllMerge(b, c)))).toBe(true);
        expect(hllEquals(hllMerge(a, a), a)).toBe(true);
        expect(hllEquals(hllMerge(a, createHll()), a)).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it('hllMerge leaves its inputs untouched', () => {
    const a = hllOf(range('p-', 0, 100));
    const before = hllToRegisters(a);
    hllMerge(a, hllOf(range('p-', 100, 2000)));
    expect(hllToRegisters(a)).toEqual(before);
    const copy = cloneHll(a);
    hllMergeInto(copy, hllOf(range('p-', 5000, 6000)));
    expect(hllToRegisters(a)).toEqual(before);
  });
});

describe('hllToRegisters / hllFromRegisters', () => {
  it('round-trips sparse and dense sketches, sorted by index', () => {
    for (const n of [0, 10, 600, 50_000]) {
      const h = hllOf(range('r-', 0, n));
      const regs = hllToRegisters(h);
      expect([...regs.index].sort((x, y) => x - y)).toEqual(regs.index);
      expect(new Set(regs.index).size).toBe(regs.index.length);
      expect(regs.rank.every((r) => r >= 1 && r <= HLL_MAX_RANK)).toBe(true);
      const back = hllFromRegisters(regs);
      expect(hllToRegisters(back)).toEqual(regs);
      expect(hllEstimate(back)).toBe(hllEstimate(h));
    }
  });

  it('takes the max of duplicate indices and skips rank 0', () => {
    const h = hllFromRegisters({ index: [5, 5, 7], rank: [3, 9, 0] });
    expect(hllToRegisters(h)).toEqual({ index: [5], rank: [9] });
  });

  it('rejects out-of-range input (programmer error)', () => {
    expect(() => hllFromRegisters({ index: [HLL_REGISTERS], rank: [1] })).toThrow(RangeError);
    expect(() => hllFromRegisters({ index: [0], rank: [HLL_MAX_RANK + 1] })).toThrow(RangeError);
    expect(() => hllFromRegisters({ index: [0, 1], rank: [1] })).toThrow(RangeError);
  });
});

describe('sparse registers (sorted packed list)', () => {
  // Reference: the register-wise max over every hash ever added, as a plain map.
  function model(hashes: Array<{ hi: number; lo: number }>): { index: number[]; rank: number[] } {
    const regs = new Map<number, number>();
    for (const x of hashes) {
      const h = createHll();
      hllAdd(h, x);
      const r = hllToRegisters(h);
      const i = r.index[0] as number;
      regs.set(i, Math.max(regs.get(i) ?? 0, r.rank[0] as number));
    }
    const index = [...regs.keys()].sort((a, b) => a - b);
    return { index, rank: index.map((i) => regs.get(i) as number) };
  }

  const hash = fc.record({ hi: fc.integer({ min: 0, max: 0xffffffff }), lo: fc.integer({ min: 0, max: 0xffffffff }) });
  // Group sizes straddle the one-by-one insert (≤ 8 registers), the single-pass merge and the
  // switch to dense (> 512), and indices repeat often enough to exercise the max.
  const groups = fc.array(
    fc.oneof(
      fc.array(hash, { maxLength: 8 }),
      fc.array(hash, { minLength: 9, maxLength: 300 }),
      fc.array(fc.record({ hi: fc.integer({ min: 0, max: 63 }).map((i) => (i << 18) >>> 0), lo: fc.integer({ min: 0, max: 0xffffffff }) }), { maxLength: 40 }),
    ),
    { maxLength: 6 },
  );

  it('adds and merges in any grouping give the registers of the reference model', () => {
    fc.assert(
      fc.property(groups, (gs) => {
        const merged = createHll();
        for (const g of gs) {
          const part = createHll();
          for (const x of g) hllAdd(part, x);
          hllMergeInto(merged, part);
        }
        const all = gs.flat();
        expect(hllToRegisters(merged)).toEqual(model(all));
        const added = createHll();
        for (const x of all) hllAdd(added, x);
        expect(hllToRegisters(added)).toEqual(model(all));
        expect(hllEstimate(merged)).toBe(hllEstimate(added));
      }),
      { numRuns: 200 },
    );
  });

  it('a copy made by merging into an empty sketch is independent of its source', () => {
    const src = hllOf(range('c-', 0, 20));
    const before = hllToRegisters(src);
    const copy = createHll();
    hllMergeInto(copy, src);
    hllMergeInto(copy, hllOf(range('c-', 20, 400)));
    expect(hllToRegisters(src)).toEqual(before);
  });
});
