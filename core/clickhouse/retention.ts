import type { ClickHouseClient } from '@clickhouse/client';
import type { RetentionDays } from '../config/core-config.ts';

/** Tables with a configurable retention, and the time column their TTL counts from (ADR 0005). */
export const RETENTION_TABLES = {
  agg_minute: 'window_start',
  agg_hour: 'window_start',
  agg_day: 'window_start',
  // The audit of too-late partials ages from when it was recorded, like its partitioning.
  late_partials: 'received_at',
  rejected_events: 'received_at',
} as const;

export type RetentionTable = keyof typeof RETENTION_TABLES;

export interface RetentionChange {
  table: RetentionTable;
  /** Configured retention; 0 = forever. */
  days: number;
  /** TTL expression before, as ClickHouse reports it; undefined when the table had none. */
  before: string | undefined;
  /** TTL expression now; undefined when rows are kept forever. */
  after: string | undefined;
  action: 'set' | 'removed' | 'unchanged';
}

const DAYS_OF: Record<RetentionTable, keyof RetentionDays> = {
  agg_minute: 'minuteDays',
  agg_hour: 'hourDays',
  agg_day: 'dayDays',
  late_partials: 'lateDays',
  rejected_events: 'rejectedDays',
};

/**
 * The TTL expression for `days` of retention, written the way ClickHouse prints it back in
 * `system.tables.engine_full`, so "already applied" is a string comparison. 0 means no TTL.
 */
export function ttlExpression(table: RetentionTable, days: number): string | undefined {
  if (!Number.isSafeInteger(days) || days < 0) throw new Error(`retention of ${table} must be a whole number of days >= 0, got ${days}`);
  return days === 0 ? undefined : `toDateTime(${RETENTION_TABLES[table]}) + toIntervalDay(${days})`;
}

/** The table TTL inside an `engine_full` text, e.g. `... ORDER BY (...) TTL <expr> SETTINGS ...`. */
export function ttlOf(engineFull: string): string | undefined {
  const match = / TTL (.+?)(?: SETTINGS .*)?$/s.exec(engineFull);
  return match?.[1]?.trim();
}

/**
 * Sets each table's TTL from the configured retention, after the migrations ran. Migrations are
 * static SQL, retention is configuration: keeping this a separate idempotent step means changing
 * `RETENTION_*_DAYS` never edits an applied migration. A table whose TTL already matches is left
 * alone, because `MODIFY TTL` re-materializes the TTL over every part.
 *
 * @example
 * await migrate(client);
 * const changes = await applyRetention(client, config.retention);
 */
export async function applyRetention(client: ClickHouseClient, retention: RetentionDays): Promise<RetentionChange[]> {
  const tables = Object.keys(RETENTION_TABLES) as RetentionTable[];
  const rs = await client.query({
    query: 'SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() AND name IN {tables:Array(String)}',
    query_params: { tables },
    format: 'JSONEachRow',
  });
  const current = new Map<string, string>();
  for (const row of await rs.json<{ name: string; engine_full: string }>()) current.set(row.name, row.engine_full);

  const changes: RetentionChange[] = [];
  for (const table of tables) {
    const engineFull = current.get(table);
    if (engineFull === undefined) throw new Error(`table ${table} does not exist: run \`tributary migrate\` before applying retention`);
    const before = ttlOf(engineFull);
    const days = retention[DAYS_OF[table]];
    const after = ttlExpression(table, days);
    if (before === after) {
      changes.push({ table, days, before, after, action: 'unchanged' });
    } else if (after === undefined) {
      // Identifiers come from RETENTION_TABLES, never from input.
      await client.command({ query: `ALTER TABLE ${table} REMOVE TTL` });
      changes.push({ table, days, before, after, action: 'removed' });
    } else {
      await client.command({ query: `ALTER TABLE ${table} MODIFY TTL ${after}` });
      changes.push({ table, days, before, after, action: 'set' });
    }
  }
  return changes;
}

/** One line per table for the CLI, e.g. `agg_minute: 30 days (set)`. */
export function describeRetention(changes: RetentionChange[]): string {
  return changes
    .map((c) => `${c.table}: ${c.days === 0 ? 'forever' : `${c.days} days`}${c.action === 'unchanged' ? '' : ` (${c.action})`}`)
    .join(', ');
}
