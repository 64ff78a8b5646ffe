// The measures a query can ask for, and the SQL that reads each one from merged rows. Every
// expression is an aggregate over mergeable columns (ADR 0002), so the same expression works on
// the raw tables and on a subquery that already merged some rows.

export type Measure =
  | { kind: 'count' }
  | { kind: 'uniques' }
  | { kind: 'sum' }
  | { kind: 'avg' }
  | { kind: 'min' }
  | { kind: 'max' }
  | { kind: 'quantile'; q: number };

/** A requested measure and the key it has in responses (`count`, `p95`, `p99.9`). */
export interface MeasureSpec {
  name: string;
  measure: Measure;
}

export const MEASURE_NAMES = ['count', 'uniques', 'sum', 'avg', 'min', 'max', 'p50', 'p90', 'p95', 'p99'] as const;

const SIMPLE: Record<string, Measure> = {
  count: { kind: 'count' },
  uniques: { kind: 'uniques' },
  sum: { kind: 'sum' },
  avg: { kind: 'avg' },
  min: { kind: 'min' },
  max: { kind: 'max' },
};

// pNN with up to three decimals, strictly between p0 and p100 (min and max cover the ends).
const QUANTILE = /^p(\d{1,2}(?:\.\d{1,3})?)$/;

/** Parses one metric name; undefined when it is not one. */
export function parseMeasure(name: string): MeasureSpec | undefined {
  const simple = SIMPLE[name];
  if (simple) return { name, measure: simple };
  const m = QUANTILE.exec(name);
  if (!m?.[1]) return undefined;
  const percent = Number(m[1]);
  if (!(percent > 0 && percent < 100)) return undefined;
  // Normalized key: p95.0 and p95 are the same metric.
  // toPrecision drops the binary noise of the division: p99.9 is q = 0.999, not 0.9990000000000001.
  return { name: `p${percent}`, measure: { kind: 'quantile', q: Number((percent / 100).toPrecision(12)) } };
}

/** Column names (or aliases of already merged columns) a measure expression reads. */
export interface MeasureColumns {
  events: string;
  valueCount: string;
  valueSum: string;
  valueMin: string;
  valueMax: string;
  usersHll: string;
  valueSketch: string;
}

export const TABLE_COLUMNS: MeasureColumns = {
  events: 'events',
  valueCount: 'value_count',
  valueSum: 'value_sum',
  valueMin: 'value_min',
  valueMax: 'value_max',
  usersHll: 'users_hll',
  valueSketch: 'value_sketch',
};

/** The merge function of each column: applying it again to merged values is still a merge. */
export const MERGE_FUNCTION: Record<keyof MeasureColumns, string> = {
  events: 'sum',
  valueCount: 'sum',
  valueSum: 'sum',
  valueMin: 'min',
  valueMax: 'max',
  usersHll: 'maxMap',
  valueSketch: 'sumMap',
};

/** Which columns a measure reads; used to merge only those in a breakdown's inner query. */
export function columnsOf(m: Measure): Array<keyof MeasureColumns> {
  switch (m.kind) {
    case 'count':
      return ['events'];
    case 'uniques':
      return ['usersHll'];
    case 'sum':
      return ['valueSum'];
    case 'avg':
      return ['valueSum', 'valueCount'];
    case 'min':
      return ['valueMin'];
    case 'max':
      return ['valueMax'];
    case 'quantile':
      return ['valueSketch'];
  }
}

/**
 * SQL aggregate for a measure. Column names come from `MeasureColumns` constants, never from a
 * request; a quantile's q is bound as the query parameter `qParam`.
 */
export function measureSql(m: Measure, c: MeasureColumns, qParam: string): string {
  switch (m.kind) {
    case 'count':
      return `sum(${c.events})`;
    case 'uniques':
      return `tributary_hll_estimate(maxMap(${c.usersHll}))`;
    case 'sum':
      return `sum(${c.valueSum})`;
    case 'avg':
      return `if(sum(${c.valueCount}) = 0, NULL, sum(${c.valueSum}) / sum(${c.valueCount}))`;
    case 'min':
      return `min(${c.valueMin})`;
    case 'max':
      return `max(${c.valueMax})`;
    case 'quantile':
      return `tributary_sketch_quantile({${qParam}:Float64}, sumMap(${c.valueSketch}))`;
  }
}

/** A measure value from a JSON row: UInt64 arrives as a number from chdb and as a string from a server. */
export function measureValue(m: Measure, raw: unknown): number | null {
  if (raw === null || raw === undefined) return m.kind === 'count' ? 0 : null;
  const n = Number(raw);
  if (!Number.isFinite(n)) return null;
  // Distinct counts are estimates; a fractional user says more precision than there is.
  return m.kind === 'uniques' ? Math.round(n) : n;
}
