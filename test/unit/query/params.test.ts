import { describe, expect, it } from 'vitest';
import { parseMeasure } from '../../../core/query/measures.ts';
import { parseFilters, parseMeasures, parseQuery, parseTime, type QueryInput } from '../../../core/query/params.ts';

const NOW = Date.UTC(2026, 10, 22, 10, 30, 15);

function input(query: string): QueryInput {
  const params = new URLSearchParams(query);
  return { names: () => [...new Set(params.keys())], get: (n) => params.get(n) ?? undefined, all: (n) => params.getAll(n) };
}

describe('parseTime', () => {
  it.each([
    ['1795860000000', 1795860000000],
    ['2026-11-22T10:00:00Z', Date.UTC(2026, 10, 22, 10)],
    ['2026-11-22T10:00:00', Date.UTC(2026, 10, 22, 10)],
    ['2026-11-22 10:00:00', Date.UTC(2026, 10, 22, 10)],
    ['2026-11-22', Date.UTC(2026, 10, 22)],
    ['2026-11-22T11:00:00+01:00', Date.UTC(2026, 10, 22, 10)],
    ['now', NOW],
    ['now-15m', NOW - 15 * 60_000],
    ['now-2w', NOW - 14 * 86_400_000],
  ])('%s', (raw, ms) => {
    expect(parseTime('from', raw, NOW)).toEqual({ ok: true, value: ms });
  });

  it('refuses epoch seconds with the millisecond form in the message', () => {
    expect(parseTime('from', '1795860000', NOW)).toEqual({ ok: false, error: { code: 'invalid_parameter', message: expect.stringContaining('1795860000000') } });
  });

  it.each([
    ['2026-02-30', 'day 30 is not 01 to 28 in 2026-02'],
    ['2026-02-29T00:00:00Z', 'day 29 is not 01 to 28 in 2026-02'],
    ['2026-04-31T10:00:00', 'day 31 is not 01 to 30 in 2026-04'],
    ['2026-13-01', 'month 13 is not 01 to 12'],
    ['2026-00-10', 'month 00 is not 01 to 12'],
    ['2026-01-00', 'day 00 is not 01 to 31 in 2026-01'],
  ])('refuses the impossible date %s instead of rolling it over', (raw, why) => {
    expect(parseTime('from', raw, NOW)).toEqual({ ok: false, error: { code: 'invalid_parameter', message: `from=${JSON.stringify(raw)} is not a calendar date: ${why}` } });
  });

  it('accepts February 29 of a leap year', () => {
    expect(parseTime('from', '2028-02-29', NOW)).toEqual({ ok: true, value: Date.UTC(2028, 1, 29) });
    expect(parseTime('from', '2000-02-29T12:00:00Z', NOW)).toEqual({ ok: true, value: Date.UTC(2000, 1, 29, 12) });
  });

  it('explains a + that arrived as a space', () => {
    const r = parseTime('to', '2026-11-22T11:00:00 01:00', NOW);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toContain('%2B');
  });
});

describe('parseMeasure(s)', () => {
  it('knows the named metrics and any pNN percentile', () => {
    expect(parseMeasure('p95')).toEqual({ name: 'p95', measure: { kind: 'quantile', q: 0.95 } });
    expect(parseMeasure('p99.9')).toEqual({ name: 'p99.9', measure: { kind: 'quantile', q: 0.999 } });
    expect(parseMeasure('p95.0')?.name).toBe('p95');
    expect(parseMeasure('p0')).toBeUndefined();
    expect(parseMeasure('p100')).toBeUndefined();
    expect(parseMeasure('sum(events)')).toBeUndefined();
  });

  it('defaults to count,uniques and removes duplicates', () => {
    expect(parseMeasures(undefined)).toMatchObject({ ok: true, value: [{ name: 'count' }, { name: 'uniques' }] });
    expect(parseMeasures('p95, p95.0 ,count')).toMatchObject({ ok: true, value: [{ name: 'p95' }, { name: 'count' }] });
  });
});

describe('parseFilters', () => {
  it('splits on the first colon and groups repeated names as alternatives', () => {
    expect(parseFilters(['country:DE', 'path:/a:b', 'country:AT', 'country:DE'])).toEqual({
      ok: true,
      value: [{ name: 'country', values: ['DE', 'AT'] }, { name: 'path', values: ['/a:b'] }],
    });
  });
});

describe('parseQuery', () => {
  it('fills defaults and widens the range to whole buckets', () => {
    const r = parseQuery('timeseries', input('site=demo&granularity=hour'), NOW);
    expect(r).toEqual({
      ok: true,
      value: {
        site: 'demo',
        event: undefined,
        fromMs: Date.UTC(2026, 10, 21, 10),
        toMs: Date.UTC(2026, 10, 22, 11),
        granularity: 'hour',
        filters: [],
        measures: [{ name: 'count', measure: { kind: 'count' } }, { name: 'uniques', measure: { kind: 'uniques' } }],
      },
    });
  });

  it('reads a breakdown with by and limit', () => {
    const r = parseQuery('breakdown', input('site=demo&by=path&limit=3&from=now-1h'), NOW);
    expect(r).toMatchObject({ ok: true, value: { by: 'path', limit: 3, granularity: 'minute' } });
  });

  it('caps timeseries length but not totals', () => {
    expect(parseQuery('timeseries', input('site=demo&from=now-8d'), NOW)).toMatchObject({ ok: false, error: { code: 'range_too_large' } });
    expect(parseQuery('totals', input('site=demo&from=now-8d'), NOW).ok).toBe(true);
  });
});
