import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';

/** One INSERT of rows already encoded by {@link RowBinaryWriter} (core/clickhouse/row-binary.ts). */
export interface RowBinaryInsert {
  table: string;
  /**
   * Column names with the type each value was encoded as: the plain type, without
   * `SimpleAggregateFunction` or `LowCardinality` (ClickHouse converts on insert).
   */
  columns: ReadonlyArray<readonly [name: string, type: string]>;
  rows: Uint8Array;
  /** Per-insert settings, e.g. `insert_deduplication_token`. */
  settings?: ClickHouseSettings;
}

/** Runs one RowBinary insert; resolves when ClickHouse has written it. */
export type InsertRowBinary = (insert: RowBinaryInsert) => Promise<void>;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

function columnList(insert: RowBinaryInsert): string {
  for (const name of [insert.table, ...insert.columns.map(([c]) => c)]) {
    // Names come from our own writers, never from input; checked so no caller can make this SQL injection.
    if (!IDENTIFIER.test(name)) throw new Error(`insertRowBinary: ${JSON.stringify(name)} is not a plain identifier`);
  }
  return insert.columns.map(([c]) => c).join(', ');
}

const quoted = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/**
 * A ClickHouse server receives the bytes as the request body of `INSERT ... FORMAT RowBinary`.
 */
export function serverRowBinaryInsert(client: ClickHouseClient): InsertRowBinary {
  return async (insert) => {
    if (insert.rows.length === 0) return;
    const result = await client.exec({
      query: `INSERT INTO ${insert.table} (${columnList(insert)}) FORMAT RowBinary`,
      values: Readable.from([Buffer.from(insert.rows.buffer, insert.rows.byteOffset, insert.rows.byteLength)]),
      ...(insert.settings ? { clickhouse_settings: insert.settings } : {}),
    });
    result.stream.resume();
  };
}

/**
 * The embedded engine (chdb) takes SQL text only, which cannot carry binary bytes: the rows go
 * to a file in `dir` that `INSERT ... SELECT FROM file()` reads, and the file is removed after.
 * Parsing and reading stay on one thread so the insert is one block, which keeps
 * `insert_deduplication_token` semantics exactly as for a body insert (a retry is one block
 * with the same token, also in the dependent materialized views).
 */
export function embeddedRowBinaryInsert(client: ClickHouseClient, dir: string): InsertRowBinary {
  return async (insert) => {
    if (insert.rows.length === 0) return;
    const columns = columnList(insert);
    const structure = insert.columns.map(([c, type]) => `${c} ${type}`).join(', ');
    const path = join(dir, `${insert.table}-${randomUUID()}.bin`);
    await writeFile(path, insert.rows);
    try {
      await client.command({
        query: `INSERT INTO ${insert.table} (${columns}) SELECT ${columns} FROM file(${quoted(path)}, 'RowBinary', ${quoted(structure)})`,
        clickhouse_settings: { ...insert.settings, max_threads: 1, input_format_parallel_parsing: 0 },
      });
    } finally {
      await rm(path, { force: true });
    }
  };
}

const INSERT_DIR_PREFIX = 'tributary-inserts-';
const INSERT_DIR = /^tributary-inserts-(\d+)-/;
/** Insert folders of this process, removed on exit even when `close()` is never reached. */
const liveInsertDirs = new Set<string>();
let exitHookInstalled = false;

/**
 * A private folder for the RowBinary files of the embedded engine, named
 * `tributary-inserts-<pid>-<random>` in `parent` (the temp dir): a process killed with SIGKILL
 * cannot remove its own, so the next start removes the folders of processes that are gone
 * ({@link removeDeadInsertDirs}). Removed by `release()` and, failing that, on process exit.
 */
export function createInsertDir(parent: string, pid: number = process.pid): { path: string; release(): void } {
  const path = mkdtempSync(join(parent, `${INSERT_DIR_PREFIX}${pid}-`));
  liveInsertDirs.add(path);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const dir of liveInsertDirs) rmSync(dir, { recursive: true, force: true });
    });
  }
  return {
    path,
    release() {
      liveInsertDirs.delete(path);
      rmSync(path, { recursive: true, force: true });
    },
  };
}

/**
 * Removes the insert folders in `parent` whose process is no longer alive (left by a SIGKILL or
 * a crash); folders of live processes stay. Returns the folders removed.
 */
export function removeDeadInsertDirs(parent: string, isAlive: (pid: number) => boolean): string[] {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(INSERT_DIR.exec(name)?.[1]);
    if (!Number.isInteger(pid) || pid <= 0 || isAlive(pid)) continue;
    rmSync(join(parent, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}
