/**
 * Seed data for tests that query ClickHouse: raw events with known answers, turned into the
 * emissions the aggregator writes (core/clickhouse/emission-writer.ts), so queries read rows
 * exactly as production writes them. Expected numbers are computed from the raw events.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addToPartial, emptyPartial, hash64, hllEstimate, mergePartialInto, sketchQuantile, type PartialAggregate } from '../../shared/algebra/index.ts';
import { dimsKeyOf, type DeltaRow, type Emission, type WindowStatus, type WindowStatusRow } from '../../core/aggregator/emission.ts';
import { openClickHouse, type ClickHouse } from '../../core/clickhouse/client.ts';
import { createEmissionWriter } from '../../core/clickhouse/emission-writer.ts';
import { migrate } from '../../core/clickhouse/migrate.ts';
import { rng } from '../support/prng.ts';
export { rng };

export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

export interface SeedEvent {
  site: string;
  event: string;
  timeMs: number;
  dims: Record<string, string>;
  user: string;
  value?: number;
  /** Aggregator partition whose emission carries the event. */
  partition: number;
}

/**
 * A fresh embedded ClickHouse on its own temp dir (one per test file: libchdb binds one data
 * directory per process), migrated; `close()` also deletes the directory.
 */
export async function openMigratedClickHouse(prefix: string): Promise<ClickHouse> {
  const path = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const ch = await openClickHouse({ kind: 'embedded', path });
  await migrate(ch.client);
  return {
    ...ch,
    async close() {
      await ch.close();
      rmSync(path, { recursive: true, force: true });
    },
  };
}


/** Log-normal, integer milliseconds: a latency-like value with a long tail. */
export function latency(u: () => number, mu = 5, sigma = 1): number {
  const z = Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  return Math.max(1, Math.round(Math.exp(mu + sigma * z)));
}

/** One emission per call: the events' deltas, merged per (window, site, event, dims), plus statuses. */
export function emissionOf(events: SeedEvent[], statuses: WindowStatusRow[] = [], windowSizeMs = MINUTE): Emission {
  const deltas = new Map<string, DeltaRow>();
  for (const e of events) {
    const windowStartMs = Math.floor(e.timeMs / windowSizeMs) * windowSizeMs;
    const dims = Object.entries(e.dims).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const dimsKey = dimsKeyOf(dims);
    const key = `${windowStartMs}|${e.site}|${e.event}|${dimsKey}`;
    let d = deltas.get(key);
    if (!d) {
      d = { site: e.site, event: e.event, windowStartMs, windowSizeMs, dims, dimsKey, partial: emptyPartial() };
      deltas.set(key, d);
    }
    addToPartial(d.partial, { user: hash64(e.user), ...(e.value === undefined ? {} : { value: e.value }) });
  }
  return { deltas: [...deltas.values()], statuses, late: [], watermarkMs: undefined };
}

export function statusRow(windowStartMs: number, status: WindowStatus, watermarkMs: number | undefined, windowSizeMs = MINUTE): WindowStatusRow {
  return { windowStartMs, windowSizeMs, status, watermarkMs, finalizedAtMs: status === 'provisional' ? undefined : watermarkMs };
}

let seedWrites = 0;

/** Writes emissions the way the aggregator does, each with its own deduplication token. */
export function createSeeder(ch: ClickHouse): (emission: Emission, partition: number) => Promise<void> {
  const writer = createEmissionWriter(ch);
  return async (emission, partition) => {
    // Tokens unique across seeders too: a repeated token is deduplicated, which is the point of tokens.
    await writer.write(emission, `test-seed-${process.pid}-${seedWrites++}`, partition);
    // window_status versions are the writer's clock in ms: the next write must get a larger one.
    await new Promise((r) => setTimeout(r, 3));
  };
}

export interface Expected {
  count: number;
  /** Exact distinct users. */
  distinct: number;
  /** What the HLL says for these events, computed in JS: SQL must give the same number. */
  uniques: number;
  sum: number;
  valueCount: number;
  min: number | null;
  max: number | null;
  avg: number | null;
  values: number[];
  partial: PartialAggregate;
}

export function expectedOf(events: SeedEvent[]): Expected {
  const partial = emptyPartial();
  const users = new Set<string>();
  const values: number[] = [];
  for (const e of events) {
    users.add(e.user);
    if (e.value !== undefined) values.push(e.value);
    const one = emptyPartial();
    addToPartial(one, { user: hash64(e.user), ...(e.value === undefined ? {} : { value: e.value }) });
    mergePartialInto(partial, one);
  }
  values.sort((a, b) => a - b);
  const sum = values.reduce((s, v) => s + v, 0);
  return {
    count: events.length,
    distinct: users.size,
    uniques: Math.round(hllEstimate(partial.users)),
    sum,
    valueCount: values.length,
    min: values.length ? (values[0] ?? null) : null,
    max: values.length ? (values[values.length - 1] ?? null) : null,
    avg: values.length ? sum / values.length : null,
    values,
    partial,
  };
}

/** The exact order statistic the sketch approximates: sorted[floor(q·(n−1))] (lower-rank rule). */
export function exactQuantile(sortedValues: number[], q: number): number | null {
  if (sortedValues.length === 0) return null;
  return sortedValues[Math.floor(q * (sortedValues.length - 1))] ?? null;
}

export function jsQuantile(e: Expected, q: number): number | null {
  return sketchQuantile(e.partial.values, q) ?? null;
}
