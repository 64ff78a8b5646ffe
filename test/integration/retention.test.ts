import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { migrate } from '../../core/clickhouse/migrate.ts';
import { applyRetention, describeRetention, ttlOf } from '../../core/clickhouse/retention.ts';
import { DAY, MINUTE, createSeeder, emissionOf, openMigratedClickHouse, type SeedEvent } from './query-fixtures.ts';

// Retention is a step after the migrations: table TTLs from RETENTION_*_DAYS, applied only when
// they differ, and rows older than a table's TTL gone after a TTL merge.

let ch: ClickHouse;

beforeAll(async () => {
  ch = await openMigratedClickHouse('trib-retention');
});

afterAll(async () => {
  await ch?.close();
});

async function ttls(): Promise<Record<string, string | undefined>> {
  const rs = await ch.client.query({
    query: "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() AND name IN ('agg_minute', 'agg_hour', 'agg_day', 'late_partials', 'rejected_events')",
    format: 'JSONEachRow',
  });
  return Object.fromEntries((await rs.json<{ name: string; engine_full: string }>()).map((r) => [r.name, ttlOf(r.engine_full)]));
}

async function count(table: string): Promise<number> {
  // Identifiers from this file only.
  const rs = await ch.client.query({ query: `SELECT sum(events) AS n FROM ${table}`, format: 'JSONEachRow' });
  const [row] = await rs.json<{ n: number | string }>();
  return Number(row?.n ?? 0);
}

describe('applyRetention', () => {
  it('sets the TTLs, reports what changed, and is a no-op the second time', async () => {
    const first = await applyRetention(ch.client, { minuteDays: 30, hourDays: 400, dayDays: 0, lateDays: 30, rejectedDays: 14 });
    expect(first.map((c) => [c.table, c.action])).toEqual([
      ['agg_minute', 'set'],
      ['agg_hour', 'set'],
      ['agg_day', 'unchanged'],
      ['late_partials', 'set'],
      ['rejected_events', 'set'],
    ]);
    expect(await ttls()).toEqual({
      agg_minute: 'toDateTime(window_start) + toIntervalDay(30)',
      agg_hour: 'toDateTime(window_start) + toIntervalDay(400)',
      agg_day: undefined,
      late_partials: 'toDateTime(received_at) + toIntervalDay(30)',
      rejected_events: 'toDateTime(received_at) + toIntervalDay(14)',
    });
    const second = await applyRetention(ch.client, { minuteDays: 30, hourDays: 400, dayDays: 0, lateDays: 30, rejectedDays: 14 });
    expect(second.every((c) => c.action === 'unchanged')).toBe(true);
    expect(describeRetention(second)).toBe('agg_minute: 30 days, agg_hour: 400 days, agg_day: forever, late_partials: 30 days, rejected_events: 14 days');
    // Migrations stay untouched by retention: re-running them still checks out.
    expect((await migrate(ch.client)).applied).toEqual([]);
  });

  it('deletes rows older than the TTL at the next TTL merge, per table', async () => {
    const now = Date.now();
    const old = Math.floor((now - 45 * DAY) / MINUTE) * MINUTE; // past minute retention, within hour's
    const ancient = Math.floor((now - 500 * DAY) / MINUTE) * MINUTE; // past hour retention too
    const recent = Math.floor((now - 2 * DAY) / MINUTE) * MINUTE;
    const ev = (timeMs: number, user: string): SeedEvent => ({ site: 'ttl.example', event: 'pageview', timeMs, dims: {}, user, partition: 0 });
    const emission = emissionOf([ev(old, 'a'), ev(ancient, 'b'), ev(recent, 'c')]);
    emission.late = [
      { site: 'ttl.example', event: 'pageview', windowStartMs: ancient, dimsKey: '', events: 1, reason: 'beyond_correction_horizon', sourceId: 'edge-1', sequence: 1, watermarkMs: now, receivedAtMs: now - 40 * DAY },
      { site: 'ttl.example', event: 'pageview', windowStartMs: ancient, dimsKey: '', events: 1, reason: 'beyond_correction_horizon', sourceId: 'edge-1', sequence: 2, watermarkMs: now, receivedAtMs: now - DAY },
    ];
    await createSeeder(ch)(emission, 0);

    // The retention now in force (30 / 400 / forever / 30) is applied by a TTL merge.
    for (const table of ['agg_minute', 'agg_hour', 'agg_day', 'late_partials']) {
      await ch.client.command({ query: `OPTIMIZE TABLE ${table} FINAL` });
    }
    expect(await count('agg_minute')).toBe(1); // recent only
    expect(await count('agg_hour')).toBe(2); // recent + 45 days
    expect(await count('agg_day')).toBe(3); // kept forever
    expect(await count('late_partials')).toBe(1); // received a day ago

    // Keep everything forever from now on: TTLs removed, nothing else changes.
    const changes = await applyRetention(ch.client, { minuteDays: 0, hourDays: 0, dayDays: 0, lateDays: 0, rejectedDays: 0 });
    expect(changes.filter((c) => c.action === 'removed').map((c) => c.table)).toEqual(['agg_minute', 'agg_hour', 'late_partials', 'rejected_events']);
    expect(Object.values(await ttls()).every((t) => t === undefined)).toBe(true);

    // A shorter retention set later also reaches rows already stored.
    await applyRetention(ch.client, { minuteDays: 0, hourDays: 0, dayDays: 100, lateDays: 0, rejectedDays: 0 });
    await ch.client.command({ query: 'OPTIMIZE TABLE agg_day FINAL' });
    expect(await count('agg_day')).toBe(2);
  });
});
