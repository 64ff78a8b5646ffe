import { describe, expect, it } from 'vitest';
import { decodeInput } from '../../../core/aggregator/input.ts';
import { addToPartial, emptyPartial, encodeEnvelope, hash64, type PartialAggregate, type PartialRow } from '../../../shared/algebra/index.ts';
import { Incarnation, T0, World } from './epoch-world.ts';

// Finding 7 of issue #10, the aggregator side: an envelope that did not come through an edge's
// ±1e15 value bound (produced straight to Kafka) is dead-lettered with a reason instead of
// making a site's sum, average and percentiles non-finite for good.

function partialOf(values: number[]): PartialAggregate {
  const p = emptyPartial();
  for (const v of values) addToPartial(p, { user: hash64(`u${v}`), value: v });
  return p;
}

function envelope(rows: Array<Partial<PartialRow>>): Uint8Array {
  return encodeEnvelope({
    version: 1,
    sourceId: 'edge-x',
    sequence: 7,
    watermarkMs: T0,
    createdAtMs: T0,
    rows: rows.map((r) => ({ windowStartMs: T0, windowSizeMs: 60_000, site: 'alpha', event: 'e', dimensions: [], partial: partialOf([1, 2]), ...r })),
  });
}

const forged = (o: Partial<PartialAggregate>): PartialAggregate => ({ ...partialOf([5]), ...o });

describe('aggregator input: values and windows within the documented bounds', () => {
  it('takes envelopes a conforming edge can produce, bounds included', () => {
    const r = decodeInput(envelope([{}, { partial: partialOf([1e15, -1e15, 1e15, 0.5]) }, { partial: emptyPartial() }, { windowStartMs: 0 }]));
    expect(r.ok).toBe(true);
  });

  it.each([
    ['a sum of 1.7976931348623157e308', forged({ sum: 1.7976931348623157e308 }), /^row 1 of source "edge-x" sequence 7: sum 1\.7976931348623157e\+308 is not a finite number within ±valueCount × 1000000000000000/],
    ['a sum of Infinity', forged({ sum: Number.POSITIVE_INFINITY }), /sum Infinity is not a finite number/],
    ['a NaN sum', forged({ sum: Number.NaN }), /sum NaN is not a finite number/],
    ['a sum beyond valueCount × 1e15', forged({ sum: 2.5e15 }), /sum 2500000000000000 is not a finite number within ±valueCount/],
    ['a max of 1e16', forged({ max: 1e16 }), /max 10000000000000000 is not a finite number within ±1000000000000000/],
    ['a min of −Infinity', forged({ min: Number.NEGATIVE_INFINITY }), /min -Infinity or max 5/],
    ['a NaN max', forged({ max: Number.NaN }), /max NaN/],
    ['min above max', forged({ min: 6 }), /min 6 is above max 5/],
    ['a sum without values', { ...emptyPartial(), count: 1, sum: 3 }, /sum, min or max set without any value/],
    ['more values than events', forged({ count: 0 }), /valueCount 1 is above count 0/],
    ['more events than 2^40 in one row', forged({ count: 2 ** 41 }), /count 2199023255552 is above 1099511627776/],
    ['a sketch bin of value 1.8e308', { ...partialOf([1]), values: partialOf([1.7e308]).values }, /quantile sketch keys 36\d+\.\.36\d+ stand for values beyond ±1000000000000000/],
    ['a sketch that does not hold valueCount values', { ...partialOf([1, 2]), values: partialOf([1]).values }, /the quantile sketch holds 1 values, valueCount is 2/],
  ])('dead-letters %s with the row, the source and the bound', (_what, partial, message) => {
    const r = decodeInput(envelope([{}, { partial }]));
    expect(r).toEqual({ ok: false, error: { code: 'value_out_of_bounds', message: expect.stringMatching(message) } });
  });

  it.each([
    ['before 1970', -60_000],
    ['after 2299', Date.UTC(2300, 0, 1)],
  ])('dead-letters a window %s (ClickHouse would show it as another date)', (_what, windowStartMs) => {
    const r = decodeInput(envelope([{ windowStartMs }]));
    expect(r).toEqual({ ok: false, error: { code: 'window_out_of_range', message: expect.stringContaining(`row 0 of source "edge-x" sequence 7: window start ${windowStartMs} ms is outside 1970-01-01..2299-12-31`) } });
  });

  it('passes decode errors through unchanged', () => {
    expect(decodeInput(new Uint8Array([1, 2, 3]))).toMatchObject({ ok: false, error: { code: 'bad_magic' } });
  });

  it('the epoch committer dead-letters the forged envelope and still counts every other event once', async () => {
    const world = new World();
    for (let i = 0; i < 4; i++) world.append(0, 'edge-a', 'alpha', 3);
    world.log.get(0)?.push({ bytes: envelope([{ partial: forged({ sum: 1.7976931348623157e308 }) }]), events: 0, site: 'alpha', duplicate: true });
    for (let i = 0; i < 4; i++) world.append(0, 'edge-a', 'alpha', 2);
    const inc = new Incarnation(world);
    inc.join([0]);
    expect(await inc.run([0])).toBe(true);
    expect(world.violations).toEqual([]);
    expect(world.countedSorted()).toEqual(world.expectedSorted());
    expect(inc.committer.stats().deadLettered).toBe(1);
    expect(inc.events('partial_dead_lettered')).toEqual([expect.objectContaining({ partition: 0, offset: '4', code: 'value_out_of_bounds', reason: expect.stringContaining('sum 1.7976931348623157e+308') })]);
  });
});
