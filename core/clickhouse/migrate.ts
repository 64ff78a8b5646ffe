import type { ClickHouseClient } from '@clickhouse/client';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Default location of the numbered migrations: `schemas/clickhouse/NNN_name.sql`. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../schemas/clickhouse/', import.meta.url));

export interface Migration {
  version: number;
  name: string;
  statements: string[];
  checksum: string;
}

export interface MigrationReport {
  applied: string[];
  alreadyApplied: string[];
}

const FILE_PATTERN = /^(\d{3})_([a-z0-9_]+)\.sql$/;

/** Reads and orders the migration files; statements are split on a `;` that ends a line. */
export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  const migrations = readdirSync(dir)
    .filter((f) => FILE_PATTERN.test(f))
    .sort()
    .map((file): Migration => {
      const match = FILE_PATTERN.exec(file);
      if (!match) throw new Error(`unreachable: ${file}`);
      const sql = readFileSync(join(dir, file), 'utf8');
      return {
        version: Number(match[1]),
        name: file,
        statements: splitStatements(sql),
        checksum: createHash('sha256').update(sql).digest('hex').slice(0, 16),
      };
    });
  const seen = new Set<number>();
  for (const m of migrations) {
    if (seen.has(m.version)) throw new Error(`two migrations share version ${m.version}: rename one in ${dir}`);
    seen.add(m.version);
  }
  return migrations;
}

export function splitStatements(sql: string): string[] {
  const withoutComments = sql
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n');
  return withoutComments
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * Applies each migration once, in order, recording it in `tributary_migrations`.
 * A migration whose file changed after it was applied is an error, not a silent re-run.
 */
export async function migrate(client: ClickHouseClient, dir: string = MIGRATIONS_DIR): Promise<MigrationReport> {
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS tributary_migrations (
      version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
    ) ENGINE = MergeTree ORDER BY version`,
  });
  const rs = await client.query({ query: 'SELECT version, name, checksum FROM tributary_migrations', format: 'JSONEachRow' });
  const done = new Map<number, { name: string; checksum: string }>();
  for (const row of await rs.json<{ version: number; name: string; checksum: string }>()) {
    done.set(Number(row.version), { name: row.name, checksum: row.checksum });
  }
  const report: MigrationReport = { applied: [], alreadyApplied: [] };
  for (const m of loadMigrations(dir)) {
    const prior = done.get(m.version);
    if (prior) {
      if (prior.checksum !== m.checksum) {
        throw new Error(
          `migration ${m.name} changed after it was applied (checksum ${prior.checksum} -> ${m.checksum}); ` +
            'add a new numbered migration instead of editing an applied one',
        );
      }
      report.alreadyApplied.push(m.name);
      continue;
    }
    for (const statement of m.statements) {
      await client.command({ query: statement });
    }
    await client.insert({
      table: 'tributary_migrations',
      values: [{ version: m.version, name: m.name, checksum: m.checksum }],
      format: 'JSONEachRow',
    });
    report.applied.push(m.name);
  }
  return report;
}
