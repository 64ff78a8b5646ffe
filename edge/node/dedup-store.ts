/**
 * The Node edge's retry deduplication (ADR 0010): one on-disk store per machine, shared by every
 * edge process that uses the same `DEDUP_DIR`, kept across crashes and restarts.
 *
 * Layout: one SQLite database, `dedup.sqlite`, in write-ahead-log mode (several processes read
 * and write it safely; every write transaction takes the database's write lock up front,
 * `BEGIN IMMEDIATE`, so a check and its mark are one atomic step across processes). Marks live
 * in one table per generation, `marks_<n>`. A key is the first 16 bytes of SHA-256(site, NUL,
 * messageId); its value names who counted the event: the process (pid and start time), the
 * store instance (a nonce) and the flush (the instance's drain number) that carries it. Table
 * `progress` holds, per instance, the last drain whose envelopes Kafka acknowledged: a mark at or
 * below it is committed (the event is in Kafka), above it pending (the event sits in that
 * process's memory). So an event costs one row, and an acknowledged flush one more write,
 * whatever its size. Table `meta` names the current generation and when it started.
 *
 * Expiry without scans: lookups read the current and the previous generation; when the current
 * one is older than the window, one transaction creates the next table, names it current and
 * drops the one before the previous. A key is remembered between `windowMs` and `2 × windowMs`.
 * Every process sees a switch in the same transaction order as its claims: there is no moment
 * at which two processes decide on different generations.
 *
 * Crash safety: a pending mark counts as absent once its process is gone (its pid is not
 * running, or runs a process that started at another time, or the store was closed), so the
 * retry of an event that never reached Kafka is counted; a pending mark of a live process makes
 * another process answer 503 `in_flight` (nothing counted) until the owner's flush is
 * acknowledged. Commits are not synced to the disk one by one (`synchronous=NORMAL`): a commit
 * survives the crash of its process (it is in the OS page cache); after a crash of the machine
 * the last marks may be lost (those retries count twice), never an event.
 *
 * Flush journal (table `journal`, driven by edge/node/flush-journal.ts): each envelope's Kafka
 * records are kept from before the send until its acknowledgement, which deletes them and
 * advances the owner's acknowledged drain in one transaction. A pending mark of a dead owner
 * whose journal holds its drain (or a later one) may be in Kafka: `busy` until a live process
 * has taken the journal over (table `recoverer`) and re-sent it; only without such an entry does
 * it count as absent.
 */
import * as crypto from 'node:crypto';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type DatabaseSyncInstance, type StatementSyncInstance } from '@photostructure/sqlite';
import type { PartialsMessage } from '../../core/kafka/partials-router.ts';
import type { Deduplicator } from '../pipeline/dedup.ts';
import type { EdgeLog } from '../ports.ts';
import { errorMessage } from '../../shared/errors.ts';

export interface DedupStoreOptions {
  dir: string;
  windowMs: number;
  now?: () => number;
  /** This process in pending marks: pid and start time (see {@link processStart}). Default: this process's. */
  process?: { pid: number; start: number };
  /** Whether process `pid` that started at `start` still runs. Default {@link processRuns}. */
  processAlive?: (pid: number, start: number) => boolean;
  /** 16 bytes identifying (site, messageId). Default: SHA-256, truncated. Tests inject collisions. */
  hash?: (site: string, messageId: string) => Uint8Array;
  log?: EdgeLog;
  /**
   * How long a transaction waits for another process's write lock before the call fails
   * (a claim is then answered 503 `dedup_unavailable`, nothing counted). Default
   * {@link DEDUP_BUSY_TIMEOUT_MS}.
   */
  busyTimeoutMs?: number;
  /**
   * Called (on a later turn of the event loop) when a claim met a pending mark of a dead process
   * whose flush journal is not recovered yet: the claim was answered `busy`; recover it now.
   */
  orphanJournalFound?: () => void;
}

/** The store's database file in `DEDUP_DIR` (with `-wal` and `-shm` beside it while open). */
export const DEDUP_FILE = 'dedup.sqlite';

/**
 * Default wait for another process's write lock. A transaction holds it for one request's
 * claims (tens of microseconds to a few milliseconds), and a rotation for as long as it takes
 * to drop the expired generation (about 24 ms per million keys, docs/BENCHMARKS.md). The wait
 * is polled by the store itself (see `unlocked`). Beyond this the request gets 503 and its
 * client retries.
 */
export const DEDUP_BUSY_TIMEOUT_MS = 5000;

/** One journaled envelope (edge/node/flush-journal.ts): the exact Kafka records of sequence `sequence`. */
export interface JournalEntry {
  sequence: number;
  /** The drain whose marks it carries (the store's drain count right after `drained()`). */
  drain: number;
  records: PartialsMessage[];
}

/** 16 bytes naming one open store: pid (u32), process start (f64), nonce (u32). */
export type StoreOwner = Buffer;

/**
 * The flush journal kept in the store (ADR 0010, addendum "The flush journal"): the envelopes a
 * process hands to Kafka, written before the send and deleted, together with advancing the
 * owner's acknowledged drain, when Kafka acknowledges them. Every method throws when the store
 * fails; edge/node/flush-journal.ts drives it.
 */
export interface DedupJournal {
  /** The drain the envelopes encoded right now carry: call right after `drained()`. */
  drain(): number;
  /** Writes entries of this store, one transaction. */
  put(entries: readonly JournalEntry[]): void;
  /**
   * Kafka acknowledged this store's envelope `sequence`: one transaction deletes its entry and
   * raises this store's acknowledged drain to `acknowledgedDrain` (never lowers it).
   */
  acked(sequence: number, acknowledgedDrain: number): void;
  /** Dead owners with journal entries that no live process (other than this one) is recovering. */
  orphans(): StoreOwner[];
  /**
   * Takes over the recovery of `owner`'s journal (one transaction, so two processes never both
   * recover it): its entries in sequence order, or undefined when the owner runs, has no entries,
   * or another live process holds the recovery.
   */
  claim(owner: StoreOwner): JournalEntry[] | undefined;
  /** After Kafka acknowledged every claimed entry again: the owner's drains up to theirs become committed, entries and claim are deleted. */
  recovered(owner: StoreOwner, entries: readonly JournalEntry[]): void;
  /** This store's owner bytes. */
  readonly owner: StoreOwner;
}

export interface DedupStore extends Deduplicator {
  journal: DedupJournal;
  /** Rotates generations when due (dropping the expired one); call every few seconds. */
  maintain(): void;
  stats(): { generations: number[]; currentStartMs: number; unacknowledgedDrains: number; bytes: number };
  close(): void;
}

const MARK = 0x50; // 'P'
/** A mark: 'P', then the owner (pid u32, process start f64, store nonce u32), then its drain (u32). */
const MARK_BYTES = 21;
const OWNER_BYTES = 16;
/** Files of the LMDB store that earlier versions kept in DEDUP_DIR (removed at open). */
const LEGACY_FILE = /^(gen-\d{10}\.mdb|tmp-\d+-\d+-\d+\.mdb)(-lock)?$/;

/** 16 bytes of SHA-256 over (site, NUL, messageId): ~1e-19 odds of any collision among 1e10 keys. */
export function dedupKey(site: string, messageId: string): Uint8Array {
  // One-shot crypto.hash (Node ≥ 20.12) skips the Hash object: about half the cost per event.
  if (oneShot !== undefined) return oneShot('sha256', `${site}\u0000${messageId}`, 'buffer').subarray(0, 16);
  return createHash('sha256').update(site).update('\u0000').update(messageId).digest().subarray(0, 16);
}

const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'buffer') => Buffer }).hash;

/**
 * When process `pid` started, in clock ticks since boot (`/proc/<pid>/stat`, field 22): with the
 * pid it names one incarnation, so a reused pid is not taken for the process that died. 0 where
 * there is no /proc (then only the pid is compared), undefined when no such process runs.
 */
export function processStart(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && existsSync('/proc/self/stat')) return undefined;
    return pidRuns(pid) ? 0 : undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // A zombie (killed, not yet reaped) no longer runs.
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  return Number(fields[19]);
}

function pidRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it runs, as another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the process `pid` that started at `start` still runs. */
export function processRuns(pid: number, start: number): boolean {
  const now = processStart(pid);
  return now !== undefined && (start === 0 || now === start);
}

/** Stores open in this process, by nonce: a closed one's pending marks count as absent. */
const openInThisProcess = new Set<number>();

/** A blob column as a Buffer sharing its memory. */
function blob(v: unknown): Buffer | undefined {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return undefined;
}

/** A row's single column (statements here select one column), or undefined without a row. */
function column(row: unknown, name: string): unknown {
  return row === undefined || row === null ? undefined : (row as Record<string, unknown>)[name];
}

const ROLLBACK = Symbol('rollback');

/** A synchronous sleep (Atomics.wait on a word nobody changes) between attempts at a lock. */
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Whether SQLite answered SQLITE_BUSY (or SQLITE_LOCKED): another connection holds the lock. */
function isBusy(e: unknown): boolean {
  const code = (e as { errcode?: unknown } | null)?.errcode;
  return typeof code === 'number' ? (code & 0xff) === 5 || (code & 0xff) === 6 : /database is locked/.test(errorMessage(e));
}

interface GenerationStatements {
  n: number;
  get: StatementSyncInstance;
  put: StatementSyncInstance;
}

/**
 * Opens (creating if needed) the store in `o.dir`. Synchronous, like every call on it: the
 * ingest pipeline claims ids between validation and accumulation without awaiting anything.
 *
 * @example
 * ```ts
 * const store = openDedupStore({ dir: './data/dedup', windowMs: 3_600_000 });
 * const edge = createEdge({ config, sourceId, sink, dedup: store });
 * setInterval(() => store.maintain(), 5000);
 * ```
 */
export function openDedupStore(o: DedupStoreOptions): DedupStore {
  const now = o.now ?? Date.now;
  const me = o.process ?? { pid: process.pid, start: processStart(process.pid) ?? 0 };
  const alive = o.processAlive ?? processRuns;
  const hash = o.hash ?? dedupKey;
  const log: EdgeLog = o.log ?? (() => undefined);
  let nonce = randomBytes(4).readUInt32BE(0);
  while (openInThisProcess.has(nonce)) nonce = (nonce + 1) >>> 0;
  const markValue = Buffer.alloc(MARK_BYTES);
  markValue[0] = MARK;
  markValue.writeUInt32BE(me.pid, 1);
  markValue.writeDoubleBE(me.start, 5);
  markValue.writeUInt32BE(nonce, 13);
  const myOwner = Buffer.from(markValue.subarray(1, 1 + OWNER_BYTES));

  mkdirSync(o.dir, { recursive: true });
  removeLegacyFiles(o.dir, log);
  const path = join(o.dir, DEDUP_FILE);
  const db: DatabaseSyncInstance = new DatabaseSync(path);
  const busyTimeoutMs = Math.max(0, o.busyTimeoutMs ?? DEDUP_BUSY_TIMEOUT_MS);
  try {
    // Waits for another process's lock are this store's own (`unlocked`), not SQLite's.
    db.exec('PRAGMA busy_timeout = 0');
    // Persistent in the file; a no-op once set. WAL: readers never block the writer, and the
    // write lock is taken per transaction.
    unlocked(() => db.exec('PRAGMA journal_mode = WAL'));
    db.exec('PRAGMA synchronous = NORMAL');
    // The WAL is checkpointed every 1,000 pages; truncate it back to this size afterwards.
    db.exec('PRAGMA journal_size_limit = 67108864');
  } catch (e) {
    db.close();
    throw e;
  }
  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');

  /**
   * Runs `fn`, repeating it while another process holds the lock it needs, for up to
   * `busyTimeoutMs`. The waits start at 50 µs and grow to 1 ms: SQLite's own busy handler
   * sleeps 1 ms, then 2, 5, 10 … 100 ms, so a process that lost the lock a few times waited
   * up to seconds while the others went on (measured with four processes claiming without pause:
   * worst wait 0.7–1.6 s with SQLite's handler, 0.13–0.28 s with this one).
   */
  function unlocked<T>(fn: () => T): T {
    let waitUs = 50;
    let deadline: number | undefined;
    for (;;) {
      try {
        return fn();
      } catch (e) {
        if (!isBusy(e)) throw e;
        // Wall time, not the sum of the sleeps: on a loaded machine a sleep overshoots.
        const t = performance.now();
        deadline ??= t + busyTimeoutMs;
        if (t >= deadline) throw new Error(`another process held the dedup store's lock for more than ${busyTimeoutMs} ms (DEDUP_DIR=${o.dir})`);
        Atomics.wait(sleeper, 0, 0, Math.min(waitUs / 1000, deadline - t));
        waitUs = Math.min(waitUs * 1.5, 1000);
      }
    }
  }

  /** Runs `fn` in a write transaction; `ROLLBACK` (or a throw) from it rolls the transaction back. */
  function write<T>(fn: () => T | typeof ROLLBACK): T | typeof ROLLBACK {
    unlocked(() => begin.run());
    let r: T | typeof ROLLBACK;
    try {
      r = fn();
    } catch (e) {
      rollback();
      throw e;
    }
    if (r === ROLLBACK) rollback();
    else commit.run();
    return r;
  }

  function rollback(): void {
    try {
      if (db.isTransaction) db.exec('ROLLBACK');
    } catch {
      // SQLite rolled it back already (e.g. after an I/O error).
    }
  }

  try {
    write(() => {
      db.exec(`CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL, started_ms REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS progress (owner BLOB PRIMARY KEY, drain INTEGER NOT NULL, generation INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS journal (owner BLOB NOT NULL, sequence REAL NOT NULL, drain INTEGER NOT NULL, records BLOB NOT NULL, PRIMARY KEY (owner, sequence)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS recoverer (owner BLOB PRIMARY KEY, recovering_by BLOB NOT NULL) WITHOUT ROWID;`);
      db.prepare('INSERT OR IGNORE INTO meta (id, generation, started_ms) VALUES (1, 1, ?)').run(now());
      const n = Number(column(db.prepare('SELECT generation FROM meta WHERE id = 1').get(), 'generation'));
      db.exec(marksTable(n));
      return undefined;
    });
  } catch (e) {
    db.close();
    throw e;
  }
  openInThisProcess.add(nonce);

  const readMeta = db.prepare('SELECT generation, started_ms FROM meta WHERE id = 1');
  const readProgress = db.prepare('SELECT drain FROM progress WHERE owner = ?');
  const raiseProgress = db.prepare(
    'INSERT INTO progress (owner, drain, generation) VALUES (?, ?, ?) ON CONFLICT (owner) DO UPDATE SET drain = max(drain, excluded.drain), generation = excluded.generation',
  );
  const putJournal = db.prepare('INSERT OR REPLACE INTO journal (owner, sequence, drain, records) VALUES (?, ?, ?, ?)');
  const deleteJournal = db.prepare('DELETE FROM journal WHERE owner = ? AND sequence = ?');
  const journalFrom = db.prepare('SELECT 1 AS found FROM journal WHERE owner = ? AND drain >= ? LIMIT 1');
  const journalOf = db.prepare('SELECT sequence, drain, records FROM journal WHERE owner = ? ORDER BY sequence');
  const journalOwners = db.prepare('SELECT DISTINCT owner FROM journal');
  const readRecoverer = db.prepare('SELECT recovering_by FROM recoverer WHERE owner = ?');
  const putRecoverer = db.prepare('INSERT OR REPLACE INTO recoverer (owner, recovering_by) VALUES (?, ?)');
  const deleteRecoverer = db.prepare('DELETE FROM recoverer WHERE owner = ?');

  let current: GenerationStatements | undefined;
  let previous: GenerationStatements | undefined;
  let generation = { n: 0, startedMs: 0 };

  /** Reads the current generation (inside a transaction) and binds the statements of it and the one before. */
  function refresh(): void {
    const row = readMeta.get() as Record<string, unknown> | undefined;
    const n = Number(column(row, 'generation'));
    generation = { n, startedMs: Number(column(row, 'started_ms')) };
    if (current?.n === n) return;
    current = statementsOf(n);
    previous = n > 1 ? statementsOf(n - 1) : undefined;
  }

  function statementsOf(n: number): GenerationStatements {
    return { n, get: db.prepare(`SELECT v FROM marks_${n} WHERE k = ?`), put: db.prepare(`INSERT OR REPLACE INTO marks_${n} (k, v) VALUES (?, ?)`) };
  }

  // Drains so far (marks claimed now ride on drain `drains + 1`), and the last acknowledged one.
  let drains = 0;
  let acknowledgedDrain = 0;
  /** Highest drain recorded acknowledged through the journal (see `journal.acked`). */
  let acknowledgedDrainRecorded = 0;
  let claimedSinceDrain = 0;
  let closed = false;

  function failed(op: string, e: unknown): void {
    log({ event: 'dedup_store_failed', op, error: errorMessage(e) });
  }

  function progressOf(owner: Uint8Array): number {
    const d = column(readProgress.get(owner), 'drain');
    return d === undefined ? 0 : Number(d);
  }

  function ownerRuns(owner: Uint8Array): boolean {
    const b = Buffer.from(owner.buffer, owner.byteOffset, owner.byteLength);
    const pid = b.readUInt32BE(0);
    const start = b.readDoubleBE(4);
    if (pid === me.pid && start === me.start) return openInThisProcess.has(b.readUInt32BE(12));
    return alive(pid, start);
  }

  type State = 'absent' | 'counted' | 'busy';

  function stateOf(v: Buffer): State {
    if (v.length !== MARK_BYTES || v[0] !== MARK) return 'absent';
    // Own mark: in Kafka, or in an envelope this process keeps until Kafka has it.
    if (v.compare(markValue, 1, 1 + OWNER_BYTES, 1, 1 + OWNER_BYTES) === 0) return 'counted';
    const owner = v.subarray(1, 1 + OWNER_BYTES);
    const drain = v.readUInt32BE(1 + OWNER_BYTES);
    if (drain <= progressOf(owner)) return 'counted';
    if (ownerRuns(owner)) return 'busy';
    // A dead owner's flush that may be in Kafka (journaled, not known acknowledged): neither
    // absent (it may be counted already) nor counted (it may never have arrived) until a
    // process re-sends the journal. Without a journal entry of that drain or later the events
    // never left the dead process's memory: absent.
    if (journalFrom.get(owner, drain) !== undefined) {
      orphanSeen();
      return 'busy';
    }
    return 'absent';
  }

  let orphanCallScheduled = false;
  function orphanSeen(): void {
    if (o.orphanJournalFound === undefined || orphanCallScheduled) return;
    orphanCallScheduled = true;
    // Never inside the claim's transaction: recovery opens transactions of its own.
    setImmediate(() => {
      orphanCallScheduled = false;
      o.orphanJournalFound?.();
    });
  }

  function recovererOf(owner: Uint8Array): Buffer | undefined {
    return blob(column(readRecoverer.get(owner), 'recovering_by'));
  }

  function entriesOf(owner: Uint8Array): JournalEntry[] {
    return journalOf.all(owner).map((row) => {
      const r = row as Record<string, unknown>;
      return decodeEntry(Number(r.sequence), Number(r.drain), blob(r.records) ?? Buffer.alloc(8));
    });
  }

  const journal: DedupJournal = {
    owner: myOwner,
    drain: () => drains,
    put(entries) {
      if (entries.length === 0) return;
      guarded('journal_put', () =>
        write(() => {
          for (const e of entries) putJournal.run(myOwner, e.sequence, e.drain, encodeEntry(e));
          return undefined;
        }),
      );
    },
    acked(sequence, drain) {
      guarded('journal_acked', () =>
        write(() => {
          refresh();
          deleteJournal.run(myOwner, sequence);
          raiseProgress.run(myOwner, drain, generation.n);
          return undefined;
        }),
      );
      if (drain > acknowledgedDrainRecorded) acknowledgedDrainRecorded = drain;
    },
    orphans() {
      return guarded('journal_orphans', () =>
        unlocked(() => journalOwners.all())
          .map((row) => blob((row as Record<string, unknown>).owner))
          .filter((owner): owner is Buffer => owner !== undefined && owner.length === OWNER_BYTES)
          .map((owner) => Buffer.from(owner))
          .filter((owner) => {
            if (owner.equals(myOwner) || ownerRuns(owner)) return false;
            const by = recovererOf(owner);
            return by === undefined || by.equals(myOwner) || !ownerRuns(by);
          }),
      );
    },
    claim(owner) {
      return guarded('journal_claim', () => {
        if (ownerRuns(owner)) return undefined;
        const r = write(() => {
          const by = recovererOf(owner);
          if (by !== undefined && !by.equals(myOwner) && ownerRuns(by)) return ROLLBACK;
          putRecoverer.run(owner, myOwner);
          return entriesOf(owner);
        });
        return r === ROLLBACK || r.length === 0 ? undefined : r;
      });
    },
    recovered(owner, entries) {
      const drain = entries.reduce((m, e) => Math.max(m, e.drain), 0);
      guarded('journal_recovered', () =>
        write(() => {
          refresh();
          raiseProgress.run(owner, drain, generation.n);
          for (const e of entries) deleteJournal.run(owner, e.sequence);
          deleteRecoverer.run(owner);
          return undefined;
        }),
      );
    },
  };

  function guarded<T>(op: string, fn: () => T): T {
    try {
      if (closed) throw new Error('the dedup store is closed');
      return fn();
    } catch (e) {
      failed(op, e);
      throw e;
    }
  }

  return {
    journal,
    claim(site, ids) {
      if (closed) throw new Error('the dedup store is closed');
      const keys = ids.map((id) => (id === undefined ? undefined : hash(site, id)));
      if (keys.every((k) => k === undefined)) return { kind: 'ok', duplicate: ids.map(() => false) };
      markValue.writeUInt32BE(drains + 1, 1 + OWNER_BYTES);
      const duplicate = new Array<boolean>(ids.length);
      let marked = 0;
      let r: undefined | typeof ROLLBACK;
      try {
        r = write(() => {
          refresh();
          const cur = current as GenerationStatements;
          for (let i = 0; i < keys.length; i++) {
            const key = keys[i];
            if (key === undefined) {
              duplicate[i] = false;
              continue;
            }
            // The current generation decides; the previous one only for keys the current lacks.
            const v = blob(column(cur.get.get(key), 'v')) ?? (previous !== undefined ? blob(column(previous.get.get(key), 'v')) : undefined);
            const state = v === undefined ? 'absent' : stateOf(v);
            if (state === 'busy') return ROLLBACK;
            if (state === 'absent') {
              cur.put.run(key, markValue);
              marked++;
              duplicate[i] = false;
            } else {
              duplicate[i] = true;
            }
          }
          return undefined;
        });
      } catch (e) {
        // The transaction was rolled back: nothing is marked, and the caller counts nothing.
        failed('claim', e);
        return { kind: 'unavailable' };
      }
      if (r === ROLLBACK) return { kind: 'busy' };
      claimedSinceDrain += marked;
      return { kind: 'ok', duplicate };
    },
    drained() {
      if (claimedSinceDrain === 0) return;
      claimedSinceDrain = 0;
      drains++;
    },
    acknowledged() {
      if (acknowledgedDrain === drains || closed) return;
      // Recorded already, with the journal entry of the flush's last envelope (journal.acked).
      if (acknowledgedDrainRecorded >= drains) {
        acknowledgedDrain = drains;
        return;
      }
      const drain = drains;
      try {
        write(() => {
          refresh();
          raiseProgress.run(myOwner, drain, generation.n);
          return undefined;
        });
        acknowledgedDrain = drain;
      } catch (e) {
        // Not recorded: this process's marks stay pending (its own retries stay duplicates, other
        // processes answer in_flight) until the next acknowledged flush records it.
        failed('acknowledged', e);
      }
    },
    maintain() {
      if (closed) return;
      try {
        let lockedAt = 0;
        const r = write(() => {
          lockedAt = performance.now();
          refresh();
          if (now() - generation.startedMs < o.windowMs) return ROLLBACK;
          const { n } = generation;
          db.exec(marksTable(n + 1));
          db.prepare('UPDATE meta SET generation = ?, started_ms = ? WHERE id = 1').run(n + 1, now());
          // Everything in the one before the previous is older than the window. Progress
          // written before the previous generation began is no longer read: a mark in the
          // previous or current generation is committed only by progress recorded after it.
          if (n > 1) db.exec(`DROP TABLE IF EXISTS marks_${n - 1}`);
          db.prepare('DELETE FROM progress WHERE generation < ?').run(n);
          return n;
        });
        if (r !== ROLLBACK) {
          log({ event: 'dedup_generation_started', generation: r + 1 });
          // How long the rotation held the write lock (dropping a table costs about 24 ms per
          // million keys): other processes' claims waited that long, up to their busy timeout.
          if (r > 1) log({ event: 'dedup_generation_expired', generation: r - 1, lock_held_ms: Math.round(performance.now() - lockedAt) });
        }
      } catch (e) {
        failed('maintain', e);
      }
    },
    stats() {
      const row = unlocked(() => readMeta.get()) as Record<string, unknown> | undefined;
      const n = Number(column(row, 'generation'));
      let bytes = 0;
      // Blocks in use (the files may be sparse).
      for (const f of [path, `${path}-wal`]) {
        try {
          bytes += statSync(f).blocks * 512;
        } catch {
          // No WAL right now.
        }
      }
      return {
        generations: n > 1 ? [n - 1, n] : [n],
        currentStartMs: Number(column(row, 'started_ms')),
        unacknowledgedDrains: drains - Math.max(acknowledgedDrain, acknowledgedDrainRecorded),
        bytes,
      };
    },
    close() {
      if (closed) return;
      closed = true;
      openInThisProcess.delete(nonce);
      try {
        db.close();
      } catch (e) {
        log({ event: 'dedup_store_failed', op: 'close', error: errorMessage(e) });
      }
    },
  };
}

function marksTable(n: number): string {
  return `CREATE TABLE IF NOT EXISTS marks_${n} (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID`;
}

/** Removes the files of the LMDB store of earlier versions: their marks are not carried over. */
function removeLegacyFiles(dir: string, log: EdgeLog): void {
  const legacy = readdirSync(dir).filter((f) => LEGACY_FILE.test(f));
  for (const f of legacy) rmSync(join(dir, f), { force: true });
  if (legacy.length > 0) log({ event: 'dedup_store_legacy_removed', files: legacy.length });
}

/** An entry's value: record count (u32), then per record partition (i32, -1: by key), key length (u32), key, value length (u32), value. */
function encodeEntry(e: JournalEntry): Buffer {
  const keys = e.records.map((r) => Buffer.from(r.key));
  let size = 4;
  e.records.forEach((r, i) => (size += 12 + (keys[i] as Buffer).length + r.value.length));
  const b = Buffer.allocUnsafe(size);
  b.writeUInt32BE(e.records.length, 0);
  let at = 4;
  e.records.forEach((r, i) => {
    const key = keys[i] as Buffer;
    b.writeInt32BE(r.partition ?? -1, at);
    b.writeUInt32BE(key.length, at + 4);
    key.copy(b, at + 8);
    at += 8 + key.length;
    b.writeUInt32BE(r.value.length, at);
    r.value.copy(b, at + 4);
    at += 4 + r.value.length;
  });
  return b;
}

function decodeEntry(sequence: number, drain: number, b: Buffer): JournalEntry {
  const n = b.readUInt32BE(0);
  const records: PartialsMessage[] = [];
  let at = 4;
  for (let i = 0; i < n; i++) {
    const partition = b.readInt32BE(at);
    const keyLength = b.readUInt32BE(at + 4);
    const key = b.toString('utf8', at + 8, at + 8 + keyLength);
    at += 8 + keyLength;
    const valueLength = b.readUInt32BE(at);
    const value = Buffer.from(b.subarray(at + 4, at + 4 + valueLength));
    at += 4 + valueLength;
    records.push(partition >= 0 ? { key, value, partition } : { key, value });
  }
  return { sequence, drain, records };
}
