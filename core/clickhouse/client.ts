import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { isProcessAlive } from '../os-probes.ts';
import { claimEmbeddedDirectory } from './embedded-owner.ts';
import { createInsertDir, embeddedRowBinaryInsert, removeDeadInsertDirs, serverRowBinaryInsert, type InsertRowBinary } from './row-binary-insert.ts';

/** Where ClickHouse lives: a server over HTTP, or the embedded engine (chdb) on a local path. */
export type ClickHouseTarget =
  | { kind: 'server'; url: string; database?: string; username?: string; password?: string }
  | { kind: 'embedded'; path: string };

/** A ClickHouse client plus a description safe to print (never contains a password). */
export interface ClickHouse {
  readonly client: ClickHouseClient;
  /** Inserts rows encoded as RowBinary: how the aggregator writes its tables (core/clickhouse/row-binary.ts). */
  readonly insertRowBinary: InsertRowBinary;
  readonly description: string;
  close(): Promise<void>;
}

/**
 * Opens ClickHouse through `@clickhouse/client` on either backend, so every caller speaks the
 * same SQL through the same API.
 *
 * @example
 * const ch = await openClickHouse({ kind: 'embedded', path: './data/clickhouse' });
 * await ch.client.query({ query: 'SELECT 1', format: 'JSONEachRow' });
 */
export async function openClickHouse(target: ClickHouseTarget): Promise<ClickHouse> {
  if (target.kind === 'server') {
    const client = createClient({
      url: target.url,
      ...(target.database ? { database: target.database } : {}),
      ...(target.username ? { username: target.username } : {}),
      ...(target.password ? { password: target.password } : {}),
      clickhouse_settings: { date_time_input_format: 'best_effort' },
    });
    return { client, insertRowBinary: serverRowBinaryInsert(client), description: `server ${redactUrl(target.url)}`, close: () => client.close() };
  }
  const path = resolve(target.path);
  mkdirSync(path, { recursive: true });
  // Before chdb: a directory another live process has open is refused with what to run instead
  // (EmbeddedClickHouseInUseError); the owner file also keeps `tributary reset` from deleting it.
  const releaseOwner = claimEmbeddedDirectory(path);
  let client: ClickHouseClient;
  try {
    // Imported lazily: libchdb is a native addon and binds one data directory per process, so
    // processes that talk to a server never load it.
    const { createChdbConnection } = await import('chdb/connection');
    // chdb types its connection against @clickhouse/client-common, which @clickhouse/client bundles
    // a copy of; the shapes are the same, the declarations are not shared.
    const connection = createChdbConnection({ path }) as unknown as NonNullable<Parameters<typeof createClient>[0]>['connection'];
    client = createClient({ connection });
  } catch (error) {
    releaseOwner();
    throw error;
  }
  // Private to this process: RowBinary files live only for the length of one insert. Folders of
  // processes that were killed before they could remove theirs go first.
  removeDeadInsertDirs(tmpdir(), isProcessAlive);
  const insertDir = createInsertDir(tmpdir());
  return {
    client,
    insertRowBinary: embeddedRowBinaryInsert(client, insertDir.path),
    description: `embedded chdb at ${path}`,
    close: async () => {
      await client.close();
      insertDir.release();
      releaseOwner();
    },
  };
}

export { embeddedOwnerFile, EmbeddedClickHouseInUseError } from './embedded-owner.ts';

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<invalid url>';
  }
}
