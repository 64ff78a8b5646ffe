import { join } from 'node:path';
import { DatabaseSync } from '@photostructure/sqlite';
import { DEDUP_FILE, type DedupStore } from '../../edge/node/dedup-store.ts';

/** The generation tables in the store's database, read through a connection of its own. */
export function markTables(dir: string): string[] {
  const db = new DatabaseSync(join(dir, DEDUP_FILE));
  try {
    return db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'marks_%' ORDER BY name")
      .all()
      .map((r) => String((r as { name: unknown }).name));
  } finally {
    db.close();
  }
}

/** A claim answered with these duplicate flags. */
export const ok = (...duplicate: boolean[]) => ({ kind: 'ok', duplicate });

/** What the flusher does once the envelope carrying everything claimed so far is acknowledged. */
export const flushAcknowledged = (s: DedupStore): void => {
  s.drained();
  s.acknowledged();
};
