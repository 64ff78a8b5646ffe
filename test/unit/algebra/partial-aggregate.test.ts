import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  addToPartial,
  clonePartial,
  emptyPartial,
  hash64,
  hllToRegisters,
  mergePartialInto,
  mergePartials,
  mergedWithEmpty,
  partialsEqual,
  sketchCount,
  sketchToBins,
  type Hash64,
  type PartialAggregate,
} from '../../../shared/algebra/index.ts';

interface TestEvent {
  user?: Hash64;
  value?: number;
}

// Integer values keep sums exact, so equality of merged sums is meaningful. A small user pool
// makes the sets overlap between slices, which is the interesting case for the HLL.
const eventArb: fc.Arbitrary<TestEvent> = fc
  .record({
    user: fc.option(fc.integer({ min: 0, max: 300 }), { nil: undefined }),
    value: fc.option(fc.integer({ min: -1_000_000, max: 1_000_000 }), { nil: undefined }),
  })
  .map(({ user, value }) => ({
    ...(user === undefined ? {} : { user: hash64(`u${user}`) }),
    ...(value === undefined ? {} : { value }),
  }));

// Occasionally enough users to push the HLL from sparse to dense.
const eventsArb = fc.oneof(
  { weight: 4, arbitrary: fc.array(eventArb, { maxLength: 60 }) },
  { weight: 1, arbitrary: fc.integer({ min: 400, max: 1500 }).map((n) => Array.from({ length: n }, (_, i) => ({ user: hash64(`big${i}`), value: i % 97 }))) },
);

function aggregate(events: TestEvent[]): PartialAggregate {
  const p = emptyPartial();
  for (const e of events) addToPartial(p, e);
  return p;
}

const partialArb = eventsArb.map(aggregate);

describe('PartialAggregate is a commutative monoid', () => {
  it('merge is associative', () => {
    fc.assert(
      fc.property(partialArb, partialArb, partialArb, (a, b, c) => {
        expect(partialsEqual(mergePartials(mergePartials(a, b), c), mergePartials(a, mergePartials(b, c)))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('merge is commutative', () => {
    fc.assert(
      fc.property(partialArb, partialArb, (a, b) => {
        expect(partialsEqual(mergePartials(a, b), mergePartials(b, a))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('emptyPartial is the identity on both sides', () => {
    fc.assert(
      fc.property(partialArb, (a) => {
        expect(partialsEqual(mergePartials(a, emptyPartial()), a)).toBe(true);
        expect(partialsEqual(mergePartials(emptyPartial(), a), a)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});

describe('split then merge equals aggregating the whole', () => {
  it('for any partition of the events into slices, merged in any order', () => {
    fc.assert(
      fc.property(
        eventsArb.chain((events) =>
          fc.tuple(
            fc.constant(events),
            fc.array(fc.integer({ min: 0, max: 4 }), { minLength: events.length, maxLength: events.length }),
            fc.integer({ min: 0, max: 4 }),
          ),
        ),
        ([events, slots, rotate]) => {
          const slices: TestEvent[][] = [[], [], [], [], []];
          events.forEach((e, i) => slices[slots[i] as number]!.push(e));
          const parts = slices.map(aggregate);
          const ordered = [...parts.slice(rotate), ...parts.slice(0, rotate)];
          const merged = emptyPartial();
          for (const p of ordered) mergePartialInto(merged, p);
          const whole = aggregate(events);

          expect(merged.count).toBe(whole.count);
          expect(merged.valueCount).toBe(whole.valueCount);
          expect(merged.sum).toBe(whole.sum);
          expect(merged.min).toBe(whole.min);
          expect(merged.max).toBe(whole.max);
          expect(hllToRegisters(merged.users)).toEqual(hllToRegisters(whole.users));
          expect(sketchToBins(merged.values)).toEqual(sketchToBins(whole.values));
          expect(partialsEqual(merged, whole)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('addToPartial', () => {
  it('counts every event but only finite values', () => {
    const p = emptyPartial();
    addToPartial(p, {});
    addToPartial(p, { value: 4 });
    addToPartial(p, { value: Number.NaN });
    addToPartial(p, { value: Number.POSITIVE_INFINITY });
    addToPartial(p, { value: -2, user: hash64('a') });
    expect(p.count).toBe(5);
    expect(p.valueCount).toBe(2);
    expect(p.sum).toBe(2);
    expect(p.min).toBe(-2);
    expect(p.max).toBe(4);
    expect(sketchCount(p.values)).toBe(2);
    expect(hllToRegisters(p.users).index).toHaveLength(1);
  });

  it('emptyPartial holds the identities', () => {
    const p = emptyPartial();
    expect([p.count, p.valueCount, p.sum, p.min, p.max]).toEqual([0, 0, 0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
  });
});

describe('partialsEqual', () => {
  it('notices a difference in any field, including registers and bins', () => {
    const base = aggregate([{ user: hash64('x'), value: 3 }, { value: 5 }]);
    const variants: Array<(p: PartialAggregate) => void> = [
      (p) => (p.count += 1),
      (p) => (p.valueCount += 1),
      (p) => (p.sum += 1),
      (p) => (p.min -= 1),
      (p) => (p.max += 1),
      (p) => addToPartial(p, { user: hash64('y') }),
    ];
    for (const change of variants) {
      const other = clonePartial(base);
      change(other);
      expect(partialsEqual(base, other)).toBe(false);
    }
    const moreBins = clonePartial(base);
    mergePartialInto(moreBins, aggregate([{ value: 1000 }]));
    moreBins.count = base.count;
    moreBins.valueCount = base.valueCount;
    moreBins.sum = base.sum;
    moreBins.max = base.max;
    expect(partialsEqual(base, moreBins)).toBe(false);
    expect(partialsEqual(base, clonePartial(base))).toBe(true);
  });

  it('mergePartials does not mutate its inputs', () => {
    const a = aggregate([{ user: hash64('x'), value: 3 }]);
    const copy = clonePartial(a);
    mergePartials(a, aggregate([{ user: hash64('z'), value: 9 }]));
    expect(partialsEqual(a, copy)).toBe(true);
  });
});

describe('mergedWithEmpty', () => {
  it('equals merging into emptyPartial(), also for −0 sums, NaN extremes and dense users', () => {
    const odd: PartialAggregate = { ...aggregate([{ value: 1 }]), sum: -0, min: Number.NaN, max: Number.NaN };
    const cases = [emptyPartial(), odd, aggregate(Array.from({ length: 900 }, (_, i) => ({ user: hash64(`e${i}`), value: i })))];
    fc.sample(partialArb, { numRuns: 50, seed: 11 }).forEach((p) => cases.push(p));
    for (const p of cases) {
      const viaMerge = emptyPartial();
      mergePartialInto(viaMerge, p);
      const copy = mergedWithEmpty(p);
      expect(copy).toEqual(viaMerge);
      expect(Object.is(copy.sum, viaMerge.sum)).toBe(true);
      // Independent of its source.
      const before = clonePartial(p);
      addToPartial(copy, { user: hash64('new'), value: 123 });
      mergePartialInto(copy, copy);
      expect(partialsEqual(p, before)).toBe(true);
    }
  });
});
