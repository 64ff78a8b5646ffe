import type { AccumulatorEvent } from '../accumulator.ts';
import type { RejectedRecord } from '../ports.ts';

/**
 * The shard's SQLite tables (Durable Object storage), with typed queries. Every method is
 * synchronous: callers group them in `transactionSync` so a step is stored whole or not at all.
 *
 * - `pending`  events stored and acknowledged, not yet in an envelope (JSON, ≤ 1000 per row);
 * - `outbox`   sealed envelopes (exact bytes, with their sequence), deleted after the gateway's 200;
 * - `rejected` redacted rejected records, deleted after the gateway's 200;
 * - `seen`     (site, messageId) keys with the time they were first seen, for durable
 *              deduplication within `DEDUP_WINDOW_MS` (rows in `id` order are in time order);
 * - `meta`     shard name, next sequence, watermark, retry state.
 */
export interface ShardStorage {
  /** Marks (site, messageId) as seen at `atMs`; false when it already was (a retry). */
  markSeen(key: string, atMs: number): boolean;
  /** Forgets keys seen before `beforeMs`; costs the rows it deletes (they are in `id` order). */
  expireSeen(beforeMs: number): void;
  /** Keys remembered. */
  seenCount(): number;
  addPending(events: AccumulatorEvent[]): void;
  addRejected(records: RejectedRecord[]): void;
  pendingEvents(): number;
  /** The oldest pending rows up to about `limit` events (at least one row). */
  takePending(limit: number): { events: AccumulatorEvent[]; lastId: number; remaining: boolean };
  deletePendingUpTo(lastId: number): void;
  addOutbox(sequence: number, body: Uint8Array, rows: number): void;
  outboxHead(): { sequence: number; body: Uint8Array } | undefined;
  deleteOutbox(sequence: number): void;
  outboxStats(): { envelopes: number; rows: number };
  /** The oldest rejected records, at most `limit` and about `maxBytes` of JSON (at least one). */
  rejectedBatch(limit: number, maxBytes: number): { records: RejectedRecord[]; lastId: number } | undefined;
  deleteRejectedUpTo(lastId: number): void;
  rejectedCount(): number;
  getMeta(key: MetaKey): string | undefined;
  getMetaNumber(key: MetaKey): number | undefined;
  setMeta(key: MetaKey, value: string | number): void;
}

export type MetaKey = 'shard' | 'next_sequence' | 'watermark_ms' | 'last_data_ms' | 'last_sent_ms' | 'attempts' | 'last_error';

const EVENTS_PER_ROW = 1000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending (id INTEGER PRIMARY KEY AUTOINCREMENT, events TEXT NOT NULL, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (sequence INTEGER PRIMARY KEY, body BLOB NOT NULL, rows INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (id INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seen (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, at INTEGER NOT NULL DEFAULT 0);
`;

/** Creates the tables if needed (idempotent) and returns the typed queries. */
export function openShardStorage(sql: SqlStorage): ShardStorage {
  sql.exec(SCHEMA);
  // Shards created before the time window had `seen (id, key)`, trimmed by count: keep their keys one more window.
  if (!sql.exec<{ name: string }>('PRAGMA table_info(seen)').toArray().some((c) => c.name === 'at')) {
    sql.exec('ALTER TABLE seen ADD COLUMN at INTEGER NOT NULL DEFAULT 0');
    sql.exec('UPDATE seen SET at = ?', Date.now());
  }
  const count = (query: string): number => Number(sql.exec<{ n: number | null }>(query).one().n ?? 0);
  return {
    markSeen(key, atMs) {
      return sql.exec('INSERT INTO seen (key, at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING RETURNING id', key, atMs).toArray().length === 1;
    },
    expireSeen(beforeMs) {
      // The subquery walks from the oldest row to the first one still in the window.
      sql.exec('DELETE FROM seen WHERE id < coalesce((SELECT id FROM seen WHERE at >= ? ORDER BY id LIMIT 1), (SELECT max(id) + 1 FROM seen))', beforeMs);
    },
    seenCount: () => count('SELECT count(*) AS n FROM seen'),
    addPending(events) {
      for (let i = 0; i < events.length; i += EVENTS_PER_ROW) {
        const chunk = events.slice(i, i + EVENTS_PER_ROW);
        sql.exec('INSERT INTO pending (events, n) VALUES (?, ?)', JSON.stringify(chunk), chunk.length);
      }
    },
    addRejected(records) {
      for (const r of records) sql.exec('INSERT INTO rejected (record) VALUES (?)', JSON.stringify(r));
    },
    pendingEvents: () => count('SELECT sum(n) AS n FROM pending'),
    takePending(limit) {
      const events: AccumulatorEvent[] = [];
      let lastId = 0;
      for (const row of sql.exec<{ id: number; events: string; n: number }>('SELECT id, events, n FROM pending ORDER BY id')) {
        if (events.length > 0 && events.length + row.n > limit) break;
        for (const e of JSON.parse(row.events) as AccumulatorEvent[]) events.push(e);
        lastId = row.id;
      }
      const remaining = sql.exec('SELECT id FROM pending WHERE id > ? LIMIT 1', lastId).toArray().length > 0;
      return { events, lastId, remaining };
    },
    deletePendingUpTo(lastId) {
      sql.exec('DELETE FROM pending WHERE id <= ?', lastId);
    },
    addOutbox(sequence, body, rows) {
      sql.exec('INSERT INTO outbox (sequence, body, rows) VALUES (?, ?, ?)', sequence, copyToArrayBuffer(body), rows);
    },
    outboxHead() {
      const row = sql.exec<{ sequence: number; body: ArrayBuffer }>('SELECT sequence, body FROM outbox ORDER BY sequence LIMIT 1').toArray()[0];
      return row === undefined ? undefined : { sequence: row.sequence, body: new Uint8Array(row.body) };
    },
    deleteOutbox(sequence) {
      sql.exec('DELETE FROM outbox WHERE sequence = ?', sequence);
    },
    outboxStats() {
      const row = sql.exec<{ envelopes: number; rows: number | null }>('SELECT count(*) AS envelopes, sum(rows) AS rows FROM outbox').one();
      return { envelopes: Number(row.envelopes), rows: Number(row.rows ?? 0) };
    },
    rejectedBatch(limit, maxBytes) {
      const records: RejectedRecord[] = [];
      let lastId = 0;
      let bytes = 0;
      for (const row of sql.exec<{ id: number; record: string }>('SELECT id, record FROM rejected ORDER BY id LIMIT ?', limit)) {
        // Stay well under the gateway's body limit; one record always goes, however large.
        if (records.length > 0 && bytes + row.record.length > maxBytes) break;
        bytes += row.record.length;
        records.push(JSON.parse(row.record) as RejectedRecord);
        lastId = row.id;
      }
      return records.length === 0 ? undefined : { records, lastId };
    },
    deleteRejectedUpTo(lastId) {
      sql.exec('DELETE FROM rejected WHERE id <= ?', lastId);
    },
    rejectedCount: () => count('SELECT count(*) AS n FROM rejected'),
    getMeta(key) {
      return sql.exec<{ v: string }>('SELECT v FROM meta WHERE k = ?', key).toArray()[0]?.v;
    },
    getMetaNumber(key) {
      const v = sql.exec<{ v: string }>('SELECT v FROM meta WHERE k = ?', key).toArray()[0]?.v;
      return v === undefined ? undefined : Number(v);
    },
    setMeta(key, value) {
      sql.exec('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v', key, String(value));
    },
  };
}

function copyToArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(out).set(bytes);
  return out;
}
