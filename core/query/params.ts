import { MEASURE_NAMES, parseMeasure, type MeasureSpec } from './measures.ts';

// Request parameters -> a typed, validated query. Pure: no I/O, the clock is passed in. Every
// failure says what was wrong and what would be accepted.

export type Granularity = 'minute' | 'hour' | 'day';

export const GRANULARITY_MS: Record<Granularity, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/** Range used when `from` is absent: about one screen of points. */
const DEFAULT_SPAN_MS: Record<Granularity, number> = { minute: 3_600_000, hour: 86_400_000, day: 30 * 86_400_000 };

/** At most this many buckets in one timeseries (a week of minutes). */
export const MAX_BUCKETS = 10_080;
export const DEFAULT_BREAKDOWN_LIMIT = 10;
export const MAX_BREAKDOWN_LIMIT = 1000;
const MAX_TEXT = 1000;
const DIMENSION_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

export interface QueryError {
  code: 'missing_parameter' | 'invalid_parameter' | 'unknown_parameter' | 'range_too_large';
  message: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: QueryError };

/** Dimension equality filters: values of one name are alternatives (OR), names combine with AND. */
export type DimensionFilters = Array<{ name: string; values: string[] }>;

export interface RangeQuery {
  site: string;
  event: string | undefined;
  /** Inclusive, aligned down to the granularity. */
  fromMs: number;
  /** Exclusive, aligned up to the granularity. */
  toMs: number;
  granularity: Granularity;
  filters: DimensionFilters;
  measures: MeasureSpec[];
}

export interface BreakdownQuery extends RangeQuery {
  /** Dimension to group by. */
  by: string;
  /** Top values by event count; the others are merged into `rest`. */
  limit: number;
}

/** Read access to the query string; `all` returns every value of a repeated parameter. */
export interface QueryInput {
  names(): string[];
  get(name: string): string | undefined;
  all(name: string): string[];
}

export type Endpoint = 'timeseries' | 'totals' | 'breakdown';

const COMMON_PARAMS = ['site', 'event', 'from', 'to', 'granularity', 'filter', 'metrics'];
const PARAMS: Record<Endpoint, string[]> = {
  timeseries: COMMON_PARAMS,
  totals: COMMON_PARAMS,
  breakdown: [...COMMON_PARAMS, 'by', 'limit'],
};
const DEFAULT_MEASURES = 'count,uniques';

function fail(code: QueryError['code'], message: string): { ok: false; error: QueryError } {
  return { ok: false, error: { code, message } };
}

/**
 * A time: epoch milliseconds, ISO 8601, or `now` / `now-<n><s|m|h|d|w>` relative to `nowMs`.
 */
export function parseTime(name: string, raw: string, nowMs: number): Parsed<number> {
  const relative = /^now(?:-(\d{1,6})([smhdw]))?$/.exec(raw);
  if (relative) {
    const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[relative[2] ?? 's'] ?? 1000;
    return { ok: true, value: nowMs - Number(relative[1] ?? 0) * unit };
  }
  if (/^\d+$/.test(raw)) {
    const ms = Number(raw);
    // 11 digits reach 1973 in milliseconds; a shorter number is almost surely epoch seconds.
    if (raw.length <= 11) return fail('invalid_parameter', `${name}=${raw} looks like epoch seconds: use epoch milliseconds (${raw}000) or ISO 8601 (2026-11-22T10:00:00Z)`);
    if (Number.isSafeInteger(ms) && ms <= 253_402_300_799_999) return { ok: true, value: ms };
  } else if (/^\d{4}-\d{2}-\d{2}/.test(raw)) {
    const impossible = impossibleDate(raw);
    if (impossible !== undefined) return fail('invalid_parameter', `${name}=${JSON.stringify(raw)} is not a calendar date: ${impossible}`);
    // A date-time without an offset is UTC, as everywhere in Tributary (Date.parse would take local time).
    const text = raw.replace(/^(\d{4}-\d{2}-\d{2}) (?=\d)/, '$1T');
    const iso = !text.includes('T') || /(?:[zZ]|[+-]\d{2}:?\d{2})$/.test(text) ? text : `${text}Z`;
    const ms = Date.parse(iso);
    if (Number.isFinite(ms)) return { ok: true, value: ms };
  }
  // An unescaped '+' of a UTC offset arrives as a space.
  const hint = raw.includes(' ') ? ' (write a + in a URL as %2B)' : '';
  return fail('invalid_parameter', `${name}=${JSON.stringify(raw)} is not a time${hint}: use epoch milliseconds (1795860000000), ISO 8601 (2026-11-22T10:00:00Z) or now-<n><s|m|h|d|w> (now-1h)`);
}

/**
 * Why the leading YYYY-MM-DD of `raw` names no day, or undefined when it does. Date.parse rolls
 * 2026-02-30 over into March 2 instead of refusing it.
 */
function impossibleDate(raw: string): string | undefined {
  const year = Number(raw.slice(0, 4));
  const month = Number(raw.slice(5, 7));
  const day = Number(raw.slice(8, 10));
  if (month < 1 || month > 12) return `month ${raw.slice(5, 7)} is not 01 to 12`;
  const days = new Date(Date.UTC(2000, month, 0)).getUTCDate() - (month === 2 && !isLeapYear(year) ? 1 : 0);
  if (day < 1 || day > days) return `day ${raw.slice(8, 10)} is not 01 to ${days} in ${raw.slice(0, 7)}`;
  return undefined;
}

function isLeapYear(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

function parseGranularity(raw: string | undefined): Parsed<Granularity> {
  const g = raw ?? 'minute';
  if (g === 'minute' || g === 'hour' || g === 'day') return { ok: true, value: g };
  return fail('invalid_parameter', `granularity=${JSON.stringify(g)} must be minute, hour or day (it picks the table: agg_minute, agg_hour or agg_day)`);
}

function parseText(name: string, raw: string | undefined, required: boolean, example: string): Parsed<string | undefined> {
  if (raw === undefined || raw === '') return required ? fail('missing_parameter', `${name} is required, e.g. ?${name}=${example}`) : { ok: true, value: undefined };
  if (raw.length > MAX_TEXT) return fail('invalid_parameter', `${name} is longer than ${MAX_TEXT} characters`);
  return { ok: true, value: raw };
}

function parseDimensionName(param: string, name: string): Parsed<string> {
  if (DIMENSION_NAME.test(name)) return { ok: true, value: name };
  return fail('invalid_parameter', `${param}: ${JSON.stringify(name)} is not a dimension name: use letters, digits, '_', '.' or '-', starting with a letter (e.g. country, path)`);
}

export function parseFilters(raw: string[]): Parsed<DimensionFilters> {
  const byName = new Map<string, string[]>();
  for (const f of raw) {
    const i = f.indexOf(':');
    if (i <= 0) return fail('invalid_parameter', `filter=${JSON.stringify(f)} must be name:value, e.g. filter=country:DE (repeat filter for more; the same name twice means either value)`);
    const name = parseDimensionName('filter', f.slice(0, i));
    if (!name.ok) return name;
    const value = f.slice(i + 1);
    if (value.length > MAX_TEXT) return fail('invalid_parameter', `filter value for ${name.value} is longer than ${MAX_TEXT} characters`);
    const values = byName.get(name.value) ?? [];
    if (!values.includes(value)) values.push(value);
    byName.set(name.value, values);
  }
  return { ok: true, value: [...byName].map(([name, values]) => ({ name, values })) };
}

export function parseMeasures(raw: string | undefined): Parsed<MeasureSpec[]> {
  const specs: MeasureSpec[] = [];
  for (const part of (raw === undefined || raw.trim() === '' ? DEFAULT_MEASURES : raw).split(',')) {
    const name = part.trim();
    if (name === '') continue;
    const spec = parseMeasure(name);
    if (!spec) return fail('invalid_parameter', `metrics: ${JSON.stringify(name)} is not a metric: use a comma list of ${MEASURE_NAMES.join(', ')} or any pNN percentile such as p75 or p99.9`);
    if (!specs.some((s) => s.name === spec.name)) specs.push(spec);
  }
  if (specs.length === 0) return fail('invalid_parameter', `metrics is empty: use a comma list of ${MEASURE_NAMES.join(', ')}`);
  if (specs.length > 20) return fail('invalid_parameter', 'metrics: at most 20 metrics per request');
  return { ok: true, value: specs };
}

function parseLimit(raw: string | undefined): Parsed<number> {
  if (raw === undefined || raw === '') return { ok: true, value: DEFAULT_BREAKDOWN_LIMIT };
  const n = Number(raw);
  if (/^\d+$/.test(raw) && n >= 1 && n <= MAX_BREAKDOWN_LIMIT) return { ok: true, value: n };
  return fail('invalid_parameter', `limit=${JSON.stringify(raw)} must be an integer from 1 to ${MAX_BREAKDOWN_LIMIT} (top values by count; the rest are merged into "rest")`);
}

/**
 * Validates the parameters of a query endpoint. The range is aligned outward to whole buckets
 * of the granularity, so every returned bucket is complete; the response echoes the aligned range.
 */
export function parseQuery(endpoint: 'breakdown', input: QueryInput, nowMs: number): Parsed<BreakdownQuery>;
export function parseQuery(endpoint: 'timeseries' | 'totals', input: QueryInput, nowMs: number): Parsed<RangeQuery>;
export function parseQuery(endpoint: Endpoint, input: QueryInput, nowMs: number): Parsed<RangeQuery | BreakdownQuery> {
  const allowed = PARAMS[endpoint];
  const unknown = input.names().filter((n) => !allowed.includes(n));
  if (unknown.length > 0) {
    return fail('unknown_parameter', `unknown parameter${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => JSON.stringify(n)).join(', ')}: /api/v1/${endpoint} accepts ${allowed.join(', ')}`);
  }
  for (const name of allowed) {
    if (name !== 'filter' && input.all(name).length > 1) return fail('invalid_parameter', `${name} is given ${input.all(name).length} times: give it once${name === 'metrics' ? ' as a comma list' : ''}`);
  }

  const site = parseText('site', input.get('site'), true, 'demo');
  if (!site.ok) return site;
  const event = parseText('event', input.get('event'), false, 'signup');
  if (!event.ok) return event;
  const granularity = parseGranularity(input.get('granularity'));
  if (!granularity.ok) return granularity;
  const g = granularity.value;
  const bucket = GRANULARITY_MS[g];

  const toRaw = input.get('to');
  const to = toRaw === undefined || toRaw === '' ? { ok: true as const, value: nowMs } : parseTime('to', toRaw, nowMs);
  if (!to.ok) return to;
  const fromRaw = input.get('from');
  const from = fromRaw === undefined || fromRaw === '' ? { ok: true as const, value: to.value - DEFAULT_SPAN_MS[g] } : parseTime('from', fromRaw, nowMs);
  if (!from.ok) return from;
  if (from.value >= to.value) return fail('invalid_parameter', `from (${new Date(from.value).toISOString()}) must be before to (${new Date(to.value).toISOString()})`);
  const fromMs = Math.floor(from.value / bucket) * bucket;
  const toMs = Math.ceil(to.value / bucket) * bucket;
  if (endpoint === 'timeseries' && (toMs - fromMs) / bucket > MAX_BUCKETS) {
    const coarser = g === 'minute' ? 'granularity=hour' : 'granularity=day';
    return fail('range_too_large', `the range spans ${(toMs - fromMs) / bucket} ${g}s; at most ${MAX_BUCKETS} points per request: shorten from..to or use ${coarser}`);
  }

  const filters = parseFilters(input.all('filter'));
  if (!filters.ok) return filters;
  const measures = parseMeasures(input.get('metrics'));
  if (!measures.ok) return measures;
  const query: RangeQuery = { site: site.value as string, event: event.value, fromMs, toMs, granularity: g, filters: filters.value, measures: measures.value };
  if (endpoint !== 'breakdown') return { ok: true, value: query };

  const byRaw = input.get('by');
  if (byRaw === undefined || byRaw === '') return fail('missing_parameter', 'by is required: the dimension to break down by, e.g. ?by=country or ?by=path');
  const by = parseDimensionName('by', byRaw);
  if (!by.ok) return by;
  const limit = parseLimit(input.get('limit'));
  if (!limit.ok) return limit;
  return { ok: true, value: { ...query, by: by.value, limit: limit.value } };
}
