/**
 * The accumulator finds an event's row through a tree of value lookups instead of a composite
 * key string. Held to the plain grouping — one row per (window, site, event, dimension pairs)
 * — on random events, including dimension lists that differ from event to event (the enrich
 * step never sends those, other callers may).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createAccumulator, type AccumulatorEvent } from '../../../edge/accumulator.ts';

const T0 = Date.parse('2024-05-01T12:00:00.000Z');

const event = fc.record({
  eventTimeMs: fc.integer({ min: T0, max: T0 + 3 * 60_000 }),
  site: fc.constantFrom('a', 'b'),
  event: fc.constantFrom('signup', 'buy', '$page'),
  dimensions: fc.oneof(
    // The usual shape: the same names in the same order.
    fc.tuple(fc.constantFrom('/', '/x', '/y'), fc.constantFrom('DE', 'FR')).map(([path, country]): Array<[string, string]> => [['country', country], ['path', path]]),
    // Irregular ones.
    fc.array(fc.tuple(fc.constantFrom('country', 'path', 'os'), fc.constantFrom('/', 'DE', 'iOS')), { maxLength: 3 }),
  ),
  value: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
});

describe('accumulator rows', () => {
  it('groups exactly by (window, site, event, dimensions)', () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 60 }), (events) => {
        const acc = createAccumulator({ windowSizeMs: 60_000, cardinalityCap: 1000 });
        const expected = new Map<string, { count: number; sum: number }>();
        for (const e of events) {
          acc.add({ ...e, user: undefined } satisfies AccumulatorEvent);
          const key = JSON.stringify([Math.floor(e.eventTimeMs / 60_000) * 60_000, e.site, e.event, e.dimensions]);
          const row = expected.get(key) ?? { count: 0, sum: 0 };
          row.count++;
          row.sum += e.value ?? 0;
          expected.set(key, row);
        }
        expect(acc.rowCount).toBe(expected.size);
        const rows = acc.drain();
        const got = new Map(rows.map((r) => [JSON.stringify([r.windowStartMs, r.site, r.event, r.dimensions]), { count: r.partial.count, sum: r.partial.sum }]));
        expect(got).toEqual(expected);
        expect(acc.rowCount).toBe(0);
      }),
      { numRuns: 500 },
    );
  });
});
