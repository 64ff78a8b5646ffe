import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addToPartial,
  emptyPartial,
  hash64,
  hllEstimate,
  hllToRegisters,
  mergePartialInto,
  sketchQuantile,
  sketchToBins,
  type PartialAggregate,
} from '../../shared/algebra/index.ts';
import { rng } from '../support/prng.ts';

// Proves ADR 0002: sketches built in JS stay mergeable inside ClickHouse. Partial rows built with
// core/algebra go into an AggregatingMergeTree; the SQL functions over maxMap/sumMap of any row
// subset must give the numbers the JS gives for merging the same partials.

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const FUNCTIONS_SQL = join(REPO, 'schemas/clickhouse/001_sketch_functions.sql');
const TABLE = `sketch_proof_${Date.now().toString(36)}`;
const SITES = ['a.example', 'b.example'];
const COUNTRIES = ['DE', 'FR', 'US', 'JP'];
const MINUTES = 30;
const EDGES = 3;
const T0 = Date.UTC(2024, 4, 1, 12, 0) / 1000; // epoch seconds

interface Row {
  site: string;
  country: string;
  minute: number; // epoch seconds
  edge: number;
  partial: PartialAggregate;
  users: Set<string>;
}


// One partial per (site, country, minute, edge): the same key arrives from several edges, user
// pools overlap across minutes and edges, and some users travel between countries.
function buildRows(): Row[] {
  const u = rng(20240501);
  const rows: Row[] = [];
  for (const site of SITES) {
    for (const [countryIndex, country] of COUNTRIES.entries()) {
      for (let m = 0; m < MINUTES; m++) {
        for (let edge = 0; edge < EDGES; edge++) {
          const partial = emptyPartial();
          const users = new Set<string>();
          const events = 100 + Math.floor(u() * 200);
          for (let i = 0; i < events; i++) {
            const user = u() < 0.1 ? `traveller-${Math.floor(u() * 2000)}` : `${country}-${Math.floor(u() * 5000)}`;
            users.add(user);
            const z = Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
            const value = Math.round(Math.exp(4.5 + 0.4 * countryIndex + 1.2 * z)); // latency-like, integer ms
            addToPartial(partial, { user: hash64(user), value });
          }
          rows.push({ site, country, minute: T0 + m * 60, edge, partial, users });
        }
      }
    }
  }
  return rows;
}

function toJsonRow(r: Row): Record<string, unknown> {
  const regs = hllToRegisters(r.partial.users);
  const bins = sketchToBins(r.partial.values);
  return {
    site: r.site,
    country: r.country,
    minute: r.minute,
    events: r.partial.count,
    users_hll: [regs.index, regs.rank],
    value_sketch: [bins.key, bins.count],
  };
}

function mergeAll(rows: Row[]): { partial: PartialAggregate; exactUsers: number } {
  const partial = emptyPartial();
  const users = new Set<string>();
  for (const r of rows) {
    mergePartialInto(partial, r.partial);
    for (const x of r.users) users.add(x);
  }
  return { partial, exactUsers: users.size };
}

function splitStatements(sql: string): string[] {
  return sql
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n')
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

// chdb types its Connection against @clickhouse/client-common while @clickhouse/client 1.23
// declares a structurally identical copy; the cast bridges the two declarations only.
type ClientConnection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>;
function openClient(path: string): ClickHouseClient {
  return createClient({ connection: createChdbConnection({ path }) as unknown as ClientConnection });
}

const relDiff = (a: number, b: number): number => (a === b ? 0 : Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b)));

const dir = mkdtempSync(join(tmpdir(), 'trib-sketch-'));
let client: ClickHouseClient;
const rows = buildRows();

async function query<T>(sql: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const rs = await client.query({ query: sql, query_params: params, format: 'JSONEachRow' });
  return rs.json<T>();
}

// UInt64 arrives as a number from chdb and as a string from a server; Number() covers both.
interface SqlAnswer {
  events: number | string;
  uniques: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  regs: [number[], number[]];
  bins: [number[], Array<number | string>];
}

const SELECT_ANSWER = `
  SELECT sum(events) AS events,
         tributary_hll_estimate(maxMap(users_hll)) AS uniques,
         tributary_sketch_quantile(0.5, sumMap(value_sketch)) AS p50,
         tributary_sketch_quantile(0.95, sumMap(value_sketch)) AS p95,
         tributary_sketch_quantile(0.99, sumMap(value_sketch)) AS p99,
         maxMap(users_hll) AS regs,
         sumMap(value_sketch) AS bins
  FROM ${TABLE}`;

// Compares one SQL answer with the JS merge of the same rows; returns the measured differences.
function expectSameAnswer(sql: SqlAnswer, subset: Row[], label: string): void {
  const { partial, exactUsers } = mergeAll(subset);
  const jsUniques = hllEstimate(partial.users);
  const regs = hllToRegisters(partial.users);
  const bins = sketchToBins(partial.values);

  expect(Number(sql.events)).toBe(partial.count);
  // Same registers and bins, so the estimates can only differ by float rounding.
  expect(sql.regs).toEqual([regs.index, regs.rank]);
  expect(sql.bins[0]).toEqual(bins.key);
  expect(sql.bins[1].map(Number)).toEqual(bins.count);
  expect(relDiff(sql.uniques, jsUniques)).toBeLessThan(1e-9);
  let quantileDiff = 0;
  for (const [q, v] of [[0.5, sql.p50], [0.95, sql.p95], [0.99, sql.p99]] as const) {
    expect(v).not.toBeNull();
    const diff = relDiff(v as number, sketchQuantile(partial.values, q) as number);
    expect(diff).toBeLessThan(1e-9);
    quantileDiff = Math.max(quantileDiff, diff);
  }
  const uniquesError = (jsUniques - exactUsers) / exactUsers;
  console.log(
    `sketch-sql ${label}: rows=${subset.length} exact_users=${exactUsers} sql_uniques=${sql.uniques.toFixed(3)} ` +
      `js_uniques=${jsUniques.toFixed(3)} uniques_error=${(uniquesError * 100).toFixed(3)}% ` +
      `hll_sql_js_rel_diff=${relDiff(sql.uniques, jsUniques).toExponential(2)} quantile_sql_js_rel_diff=${quantileDiff.toExponential(2)} p95=${sql.p95}`,
  );
  expect(Math.abs(uniquesError)).toBeLessThan(0.02);
}

beforeAll(async () => {
  client = openClient(dir);
  for (const statement of splitStatements(readFileSync(FUNCTIONS_SQL, 'utf8'))) await client.command({ query: statement });
  await client.command({
    query: `CREATE TABLE ${TABLE} (
      site LowCardinality(String),
      country LowCardinality(String),
      minute DateTime('UTC'),
      events SimpleAggregateFunction(sum, UInt64),
      users_hll SimpleAggregateFunction(maxMap, Tuple(Array(UInt16), Array(UInt8))),
      value_sketch SimpleAggregateFunction(sumMap, Tuple(Array(Int32), Array(UInt64)))
    ) ENGINE = AggregatingMergeTree ORDER BY (site, country, minute)`,
  });
  // One insert per edge: several parts holding rows with the same key, as in production.
  for (let edge = 0; edge < EDGES; edge++) {
    await client.insert({ table: TABLE, values: rows.filter((r) => r.edge === edge).map(toJsonRow), format: 'JSONEachRow' });
  }
});

afterAll(async () => {
  await client.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('sketches merged in ClickHouse SQL equal the JS merge', () => {
  const fromMinute = T0 + 5 * 60;
  const toMinute = T0 + 20 * 60;
  const inRange = (r: Row) => r.minute >= fromMinute && r.minute < toMinute;
  const filtered = (r: Row) => r.site === 'a.example' && (r.country === 'DE' || r.country === 'FR');

  async function checkAll(stage: string): Promise<void> {
    const [all] = await query<SqlAnswer>(SELECT_ANSWER);
    expectSameAnswer(all as SqlAnswer, rows, `${stage} all`);

    const [range] = await query<SqlAnswer>(
      `${SELECT_ANSWER} WHERE minute >= toDateTime({from:UInt32}, 'UTC') AND minute < toDateTime({to:UInt32}, 'UTC')`,
      { from: fromMinute, to: toMinute },
    );
    expectSameAnswer(range as SqlAnswer, rows.filter(inRange), `${stage} time range`);

    const [dims] = await query<SqlAnswer>(`${SELECT_ANSWER} WHERE site = {site:String} AND country IN {countries:Array(String)}`, {
      site: 'a.example',
      countries: ['DE', 'FR'],
    });
    expectSameAnswer(dims as SqlAnswer, rows.filter(filtered), `${stage} dimension filter`);

    // One key, one minute: the small-cardinality end, where the σ series dominates.
    const [single] = await query<SqlAnswer>(`${SELECT_ANSWER} WHERE site = 'b.example' AND country = 'JP' AND minute = toDateTime({m:UInt32}, 'UTC')`, {
      m: T0 + 7 * 60,
    });
    expectSameAnswer(single as SqlAnswer, rows.filter((r) => r.site === 'b.example' && r.country === 'JP' && r.minute === T0 + 7 * 60), `${stage} one key`);

    const perCountry = await query<SqlAnswer & { country: string }>(
      `SELECT country, ${SELECT_ANSWER.replace('SELECT', '')} WHERE minute >= toDateTime({from:UInt32}, 'UTC') GROUP BY country ORDER BY country`,
      { from: fromMinute },
    );
    expect(perCountry.map((r) => r.country)).toEqual([...COUNTRIES].sort());
    for (const answer of perCountry) {
      expectSameAnswer(answer, rows.filter((r) => r.country === answer.country && r.minute >= fromMinute), `${stage} country=${answer.country}`);
    }
  }

  it('over the whole table, a time range, a dimension filter and GROUP BY', async () => {
    const [{ n }] = (await query<{ n: number | string }>(`SELECT count() AS n FROM ${TABLE}`)) as [{ n: number | string }];
    expect(Number(n)).toBeGreaterThan(SITES.length * COUNTRIES.length * MINUTES); // unmerged edge rows present
    await checkAll('unmerged');
  });

  it('gives the same answers after OPTIMIZE FINAL merged the rows inside the engine', async () => {
    await client.command({ query: `OPTIMIZE TABLE ${TABLE} FINAL` });
    const [{ n }] = (await query<{ n: number | string }>(`SELECT count() AS n FROM ${TABLE}`)) as [{ n: number | string }];
    expect(Number(n)).toBe(SITES.length * COUNTRIES.length * MINUTES);
    await checkAll('after OPTIMIZE FINAL');
  });

  it('handles empty input and rejects q outside [0, 1]', async () => {
    const [empty] = await query<{ u: number; p: number | null }>(
      `SELECT tributary_hll_estimate(maxMap(users_hll)) AS u, tributary_sketch_quantile(0.5, sumMap(value_sketch)) AS p FROM ${TABLE} WHERE site = 'nobody'`,
    );
    expect(empty).toEqual({ u: 0, p: null });
    await expect(query(`SELECT tributary_sketch_quantile(1.5, sumMap(value_sketch)) FROM ${TABLE}`)).rejects.toThrow(/q must be within/);
  });

  it('keeps the SQL functions on disk: a new client and a new process on the same path see them', async () => {
    await client.close();
    expect(readdirSync(join(dir, 'user_defined'))).toContain('function_tributary_hll_estimate.sql');
    // A restarted process (what `tributary migrate` + aggregator restarts rely on).
    const child = `
      const { createClient } = require('@clickhouse/client');
      const { createChdbConnection } = require('chdb/connection');
      (async () => {
        const c = createClient({ connection: createChdbConnection({ path: process.argv[1] }) });
        const rs = await c.query({ query: "SELECT count() AS n FROM system.functions WHERE name LIKE 'tributary_%' AND origin = 'SQLUserDefined'", format: 'JSONEachRow' });
        process.stdout.write(JSON.stringify(await rs.json()));
        await c.close();
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const out = execFileSync(process.execPath, ['-e', child, dir], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
    // chdb prints UInt64 unquoted, a server quotes it: compare as numbers.
    expect((JSON.parse(out) as Array<{ n: number | string }>).map((r) => Number(r.n))).toEqual([7]);
    // And a re-created client in this process.
    client = openClient(dir);
    const [again] = await query<{ u: number }>(`SELECT tributary_hll_estimate(maxMap(users_hll)) AS u FROM ${TABLE}`);
    expect(relDiff((again as { u: number }).u, hllEstimate(mergeAll(rows).partial.users))).toBeLessThan(1e-9);
  });
});
