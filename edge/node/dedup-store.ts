/**
 * The Node edge's retry deduplication (ADR 0010): one on-disk store per machine, shared by every
 * edge process that uses the same `DEDUP_DIR`, kept across crashes and restarts.
 *
 * Layout: LMDB environments (memory-mapped B-trees, safe across processes) named
 * `gen-<n>.mdb`, one per generation. A key is the first 16 bytes of SHA-256(site, NUL,
 * messageId); its value names who counted the event: the process (pid and start time), the
 * store instance (a nonce) and the flush (the instance's drain number) that carries it. Each
 * instance records, under its own 17-byte key, the last drain whose envelopes Kafka
 * acknowledged: a mark at or below it is committed (the event is in Kafka), above it pending
 * (the event sits in that process's memory). So an event costs one write, and an acknowledged
 * flush one more write, whatever its size. One-byte keys hold a generation's start time and
 * its successor.
 *
 * Expiry without scans: lookups read the current and the previous generation; when the current
 * one is older than the window, the next is created and the one before the previous is deleted
 * as a file. A key is remembered between `windowMs` and `2 × windowMs`.
 *
 * Crash safety: a pending mark counts as absent once its process is gone (its pid is not
 * running, or runs a process that started at another time, or the store was closed), so the
 * retry of an event that never reached Kafka is counted; a pending mark of a live process makes
 * another process answer 503 `in_flight` (nothing counted) until the owner's flush is
 * acknowledged.
 *
 * Flush journal (`journal`, driven by edge/node/flush-journal.ts): each envelope's Kafka records
 * are kept under `'j' + owner + sequence` from before the send until its acknowledgement, which
 * deletes them and advances the owner's acknowledged drain in one transaction. A pending mark of
 * a dead owner whose journal holds its drain (or a later one) may be in Kafka: `busy` until a
 * live process has taken the journal over (`'c' + owner`) and re-sent it; only without such an
 * entry does it count as absent.
 */
import * as crypto from 'node:crypto';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ABORT, open, type RootDatabase } from 'lmdb';
import type { PartialsMessage } from '../../core/kafka/partials-router.ts';
import type { ClaimResult, Deduplicator } from '../pipeline/dedup.ts';
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
   * Called (on a later turn of the event loop) when a claim met a pending mark of a dead process
   * whose flush journal is not recovered yet: the claim was answered `busy`; recover it now.
   */
  orphanJournalFound?: () => void;
}

/**
 * Address space mapped per generation file: 1 TiB, the same in every process. It is virtual
 * (the file grows as pages are written, and the map is read-only: no writable map), so it costs
 * no memory or disk. It holds one generation of about 14 billion keys (73 MB per million), more
 * than a 24-hour window at 50,000 events/s; beyond that lmdb-js would grow the map of the writing
 * process (not exercised). Any error of the store is answered 503 `dedup_unavailable` and logged
 * `dedup_store_failed`; the next call reopens the store from disk.
 */
export const DEDUP_MAP_BYTES = 2 ** 40;

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
 * fails (it is then reopened at the next call); edge/node/flush-journal.ts drives it.
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
  /** Rotates generations when due and deletes expired ones; call every few seconds. */
  maintain(): void;
  stats(): { generations: number[]; currentStartMs: number; unacknowledgedDrains: number; bytes: number };
  close(): void;
}

const MARK = 0x50; // 'P'
/** A mark: 'P', then the owner (pid u32, process start f64, store nonce u32), then its drain (u32). */
const MARK_BYTES = 21;
const OWNER_BYTES = 16;
const PROGRESS = 0x6f; // 'o': 'o' + owner -> last acknowledged drain (u32)
const JOURNAL = 0x6a; // 'j': 'j' + owner + sequence (f64) -> drain (u32), records
const RECOVERER = 0x63; // 'c': 'c' + dead owner -> the owner recovering its journal
const START_KEY = Buffer.from([0x73]); // 's'
const SUCCESSOR_KEY = Buffer.from([0x6e]); // 'n'
const FILE = /^gen-(\d{10})\.mdb$/;

interface Generation {
  seq: number;
  db: RootDatabase<Buffer, Buffer>;
  startMs: number;
}

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

function fileOf(dir: string, seq: number): string {
  return join(dir, `gen-${String(seq).padStart(10, '0')}.mdb`);
}

/**
 * Opens (creating if needed) the store in `o.dir`. Synchronous, like every call on it: the
 * ingest pipeline claims ids between validation and accumulation without awaiting anything.
 *
 * @example
 * ```ts
 * const store = openDedupStore({ dir: './data/dedup', windowMs: 3_600_000 });
 * const edge = createEdge({ config, sourceId, partialSink, rejectedSink, dedup: store });
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
  openInThisProcess.add(nonce);
  const markValue = Buffer.alloc(MARK_BYTES);
  markValue[0] = MARK;
  markValue.writeUInt32BE(me.pid, 1);
  markValue.writeDoubleBE(me.start, 5);
  markValue.writeUInt32BE(nonce, 13);
  const myProgressKey = Buffer.alloc(1 + OWNER_BYTES);
  myProgressKey[0] = PROGRESS;
  markValue.copy(myProgressKey, 1, 1, 1 + OWNER_BYTES);
  const progressKey = Buffer.alloc(1 + OWNER_BYTES);
  progressKey[0] = PROGRESS;

  mkdirSync(o.dir, { recursive: true });

  function openEnv(path: string): RootDatabase<Buffer, Buffer> {
    // noSync: a commit is in the page cache, which survives a process crash; after a machine
    // crash the last marks may be lost (those retries count twice), never an event.
    // No writable map: with MDB_WRITEMAP each process ftruncates the file to its own map size
    // (lmdb-js grows maps on demand, 128 KB at first), so one process shrank the file under
    // another's map and that one died with SIGBUS at its next page. Here the map is fixed and
    // the same in every process, pages are written with pwrite, the file only grows (ADR 0010,
    // "Several processes").
    return open<Buffer, Buffer>({ path, encoding: 'binary', keyEncoding: 'binary', compression: false, cache: false, noSync: true, overlappingSync: false, useWritemap: false, mapSize: DEDUP_MAP_BYTES });
  }

  function startOf(db: RootDatabase<Buffer, Buffer>): number | undefined {
    db.resetReadTxn();
    return db.getBinary(START_KEY)?.readDoubleBE(0);
  }

  /**
   * Opens generation `seq` if its file exists and was made whole by {@link createGeneration}
   * (it has a start time). A name is never created by opening it for use: a file expired
   * (unlinked) in the meantime would come back empty, with a lock file of its own, beside
   * processes still writing the unlinked one. Such an empty file is closed, never written.
   */
  function openExisting(seq: number): Generation | undefined {
    const path = fileOf(o.dir, seq);
    if (!existsSync(path)) return undefined;
    const db = openEnv(path);
    const startMs = startOf(db);
    if (startMs === undefined) {
      db.close();
      return undefined;
    }
    return { seq, db, startMs };
  }

  /**
   * Creates generation `seq` whole under a name of this store, then links it to its real name,
   * which fails if another process made it first: two processes never create one environment
   * at once, and no process sees a generation before its start time is in it.
   */
  function createGeneration(seq: number): void {
    const tmp = join(o.dir, `tmp-${me.pid}-${nonce}-${seq}.mdb`);
    rmSync(tmp, { force: true });
    rmSync(`${tmp}-lock`, { force: true });
    const db = openEnv(tmp);
    const b = Buffer.alloc(8);
    b.writeDoubleBE(now());
    db.putSync(START_KEY, b);
    db.close();
    try {
      linkSync(tmp, fileOf(o.dir, seq));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      rmSync(tmp, { force: true });
      rmSync(`${tmp}-lock`, { force: true });
    }
  }

  function existing(): number[] {
    return readdirSync(o.dir)
      .map((f) => FILE.exec(f)?.[1])
      .filter((s): s is string => s !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }

  /** The newest generation and the one before it, as on disk now (creating the first one). */
  function openNewest(): { current: Generation; previous: Generation | undefined } {
    for (;;) {
      const seqs = existing();
      const last = seqs.at(-1);
      if (last === undefined) {
        createGeneration(1);
        continue;
      }
      const cur = openExisting(last);
      if (cur === undefined) {
        // Expired since the listing (only older ones expire, so a newer one exists), or empty:
        // an empty newest file can only be a lagging open's; start the next generation.
        if (existsSync(fileOf(o.dir, last))) createGeneration(last + 1);
        continue;
      }
      return { current: cur, previous: seqs.includes(last - 1) ? openExisting(last - 1) : undefined };
    }
  }

  let { current, previous } = openNewest();
  // Drains so far (marks claimed now ride on drain `drains + 1`), and the last acknowledged one.
  let drains = 0;
  let acknowledgedDrain = 0;
  /** Highest drain recorded acknowledged through the journal (see `journal.acked`). */
  let acknowledgedDrainRecorded = 0;
  let claimedSinceDrain = 0;
  let closed = false;
  /** Set when an operation failed: the next one reopens the generations from disk first. */
  let broken = false;

  function reopen(): void {
    for (const g of [previous, current]) {
      try {
        g?.db.close();
      } catch {
        // Already unusable: nothing to release.
      }
    }
    previous = undefined;
    ({ current, previous } = openNewest());
    broken = false;
  }

  function failed(op: string, e: unknown): void {
    broken = true;
    log({ event: 'dedup_store_failed', op, error: errorMessage(e) });
  }

  /** Moves on to the successor of the current generation, if it has one. */
  function follow(): boolean {
    // A fresh snapshot: the cached read transaction may predate the successor's naming (it is
    // renewed only between event-loop turns), and a claim loop would then spin forever.
    current.db.resetReadTxn();
    const next = current.db.getBinary(SUCCESSOR_KEY);
    if (next === undefined) return false;
    const seq = next.readUInt32BE(0);
    const g = openExisting(seq);
    if (g === undefined) {
      // This process lagged more than a generation and the successor has expired since.
      reopen();
      return true;
    }
    const old = previous;
    previous = current;
    current = g;
    old?.db.close();
    // The previous generation no longer changes: read it from a snapshot taken after its last write.
    previous.db.resetReadTxn();
    return true;
  }

  /** The last drain the mark's owner recorded as acknowledged, in either generation. */
  function progressOf(value: Buffer): number {
    value.copy(progressKey, 1, 1, 1 + OWNER_BYTES);
    const a = current.db.getBinary(progressKey);
    const b = previous?.db.getBinary(progressKey);
    return Math.max(a === undefined ? 0 : a.readUInt32BE(0), b === undefined ? 0 : b.readUInt32BE(0));
  }

  /** Whether the process (and store) that made a mark still runs. */
  function ownerAlive(value: Buffer): boolean {
    const pid = value.readUInt32BE(1);
    const start = value.readDoubleBE(5);
    if (pid === me.pid && start === me.start) return openInThisProcess.has(value.readUInt32BE(13));
    return alive(pid, start);
  }

  type State = 'absent' | 'counted' | 'busy';

  function stateIn(db: RootDatabase<Buffer, Buffer>, key: Uint8Array): State | undefined {
    const v = db.getBinary(key as Buffer);
    if (v === undefined) return undefined;
    if (v.length !== MARK_BYTES || v[0] !== MARK) return 'absent';
    // Own mark: in Kafka, or in an envelope this process keeps until Kafka has it.
    if (v.compare(markValue, 1, 1 + OWNER_BYTES, 1, 1 + OWNER_BYTES) === 0) return 'counted';
    const drain = v.readUInt32BE(1 + OWNER_BYTES);
    if (drain <= progressOf(v)) return 'counted';
    if (ownerAlive(v)) return 'busy';
    // A dead owner's flush that may be in Kafka (journaled, not known acknowledged): neither
    // absent (it may be counted already) nor counted (it may never have arrived) until a
    // process re-sends the journal. Without a journal entry of that drain or later the events
    // never left the dead process's memory: absent.
    if (journaledFrom(v.subarray(1, 1 + OWNER_BYTES), drain)) {
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

  function journalPrefix(owner: Uint8Array): Buffer {
    const p = Buffer.alloc(1 + OWNER_BYTES);
    p[0] = JOURNAL;
    p.set(owner, 1);
    return p;
  }

  function journalKey(owner: Uint8Array, sequence: number): Buffer {
    const k = Buffer.alloc(1 + OWNER_BYTES + 8);
    k[0] = JOURNAL;
    k.set(owner, 1);
    // Sequences are positive: their big-endian doubles sort like the numbers.
    k.writeDoubleBE(sequence, 1 + OWNER_BYTES);
    return k;
  }

  /** Journal entries of `owner` (both generations), as [key, value], in sequence order. */
  function journalOf(owner: Uint8Array): Array<[Buffer, Buffer]> {
    const prefix = journalPrefix(owner);
    const out = new Map<string, [Buffer, Buffer]>();
    for (const g of [previous, current]) {
      if (g === undefined) continue;
      for (const { key, value } of g.db.getRange({ start: prefix })) {
        const k = key as Buffer;
        if (k.length < prefix.length || k.compare(prefix, 0, prefix.length, 0, prefix.length) !== 0) break;
        if (k.length === 1 + OWNER_BYTES + 8) out.set(k.toString('hex'), [Buffer.from(k), Buffer.from(value)]);
      }
    }
    return [...out.values()].sort((x, y) => x[0].compare(y[0]));
  }

  function journaledFrom(owner: Uint8Array, drain: number): boolean {
    for (const [, v] of journalOf(owner)) if (v.readUInt32BE(0) >= drain) return true;
    return false;
  }

  function recovererKey(owner: Uint8Array): Buffer {
    const k = Buffer.alloc(1 + OWNER_BYTES);
    k[0] = RECOVERER;
    k.set(owner, 1);
    return k;
  }

  function ownerRuns(owner: Uint8Array): boolean {
    const b = Buffer.from(owner.buffer, owner.byteOffset, owner.byteLength);
    const pid = b.readUInt32BE(0);
    const start = b.readDoubleBE(4);
    if (pid === me.pid && start === me.start) return openInThisProcess.has(b.readUInt32BE(12));
    return alive(pid, start);
  }

  /** Runs `fn` in a write transaction of the newest generation (following successors). */
  function writeNewest(fn: (db: RootDatabase<Buffer, Buffer>) => unknown): unknown {
    if (broken) reopen();
    for (;;) {
      const db = current.db;
      const r = db.transactionSync(() => {
        if (db.getBinary(SUCCESSOR_KEY) !== undefined) return ABORT;
        return fn(db);
      }) as unknown;
      if (r !== ABORT) return r;
      follow();
    }
  }

  function progressBytes(drain: number): Buffer {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(drain);
    return b;
  }

  function claimOnce(ids: ReadonlyArray<string | undefined>, keys: Array<Uint8Array | undefined>): ClaimResult | 'follow' {
    let marked = 0;
    markValue.writeUInt32BE(drains + 1, 1 + OWNER_BYTES);
    const duplicate = new Array<boolean>(ids.length);
    let busy = false;
    const r = current.db.transactionSync(() => {
      if (current.db.getBinary(SUCCESSOR_KEY) !== undefined) return ABORT;
      for (let i = 0; i < ids.length; i++) {
        const key = keys[i];
        if (key === undefined) {
          duplicate[i] = false;
          continue;
        }
        // The current generation decides; the previous one only for keys the current lacks.
        const state = stateIn(current.db, key) ?? (previous !== undefined ? stateIn(previous.db, key) : undefined) ?? 'absent';
        if (state === 'busy') {
          busy = true;
          return ABORT;
        }
        if (state === 'absent') {
          current.db.putSync(key as Buffer, markValue);
          marked++;
          duplicate[i] = false;
        } else {
          duplicate[i] = true;
        }
      }
      return undefined;
    }) as unknown;
    if (r === ABORT && !busy) return 'follow';
    if (busy) return { kind: 'busy' };
    claimedSinceDrain += marked;
    return { kind: 'ok', duplicate };
  }

  const myOwner = Buffer.from(markValue.subarray(1, 1 + OWNER_BYTES));

  /**
   * Runs `fn` (whole transactions only) and, if it throws, once more on the same environments.
   * lmdb-js 3.5.6 manages LMDB's free-page list itself, and under sustained writes (more often
   * with the journal's put-then-delete of envelopes, and with several processes) a transaction
   * now and then fails in it ("mdb_page_alloc error", MDB_BAD_VALSIZE "Invalid zero size key",
   * "reserved freelist had a data entry with zero-size", MDB_NOTFOUND, MDB_BAD_TXN), as
   * reported, still open, against lmdb-js under write load; not a misuse here (ADR 0010). The failed transaction
   * was rolled back and its abort dropped that cached list, so the repeat reads it afresh from the
   * file and succeeds. Not reopened in between: opening an environment while another process
   * writes it can set back the environment's last transaction id (lmdb-js sets it on every open).
   */
  function retried<T>(op: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (closed) throw e;
      log({ event: 'dedup_store_retried', op, error: errorMessage(e) });
      return fn();
    }
  }

  function guarded<T>(op: string, fn: () => T): T {
    try {
      if (closed) throw new Error('the dedup store is closed');
      if (broken) reopen();
      return retried(op, fn);
    } catch (e) {
      failed(op, e);
      throw e;
    }
  }

  const journal: DedupJournal = {
    owner: myOwner,
    drain: () => drains,
    put(entries) {
      if (entries.length === 0) return;
      guarded('journal_put', () =>
        writeNewest((db) => {
          for (const e of entries) db.putSync(journalKey(myOwner, e.sequence), encodeEntry(e));
          return undefined;
        }),
      );
    },
    acked(sequence, acknowledgedDrain) {
      guarded('journal_acked', () => {
        const key = journalKey(myOwner, sequence);
        // The entry and the progress change in one transaction, in the generation that holds
        // the entry (progress is read as the maximum over both generations).
        const holder = previous !== undefined && previous.db.getBinary(key) !== undefined && current.db.getBinary(key) === undefined ? previous.db : undefined;
        const write = (db: RootDatabase<Buffer, Buffer>): undefined => {
          db.removeSync(key);
          const had = db.getBinary(myProgressKey);
          if (had === undefined || had.readUInt32BE(0) < acknowledgedDrain) db.putSync(myProgressKey, progressBytes(acknowledgedDrain));
          return undefined;
        };
        if (holder !== undefined) holder.transactionSync(() => write(holder));
        else writeNewest(write);
        if (acknowledgedDrain > acknowledgedDrainRecorded) acknowledgedDrainRecorded = acknowledgedDrain;
      });
    },
    orphans() {
      return guarded('journal_orphans', () => {
        const owners = new Map<string, Buffer>();
        const start = Buffer.from([JOURNAL]);
        const end = Buffer.from([JOURNAL + 1]);
        for (const g of [previous, current]) {
          if (g === undefined) continue;
          g.db.resetReadTxn();
          for (const key of g.db.getKeys({ start, end })) {
            const k = key as Buffer;
            if (k.length !== 1 + OWNER_BYTES + 8) continue;
            const owner = Buffer.from(k.subarray(1, 1 + OWNER_BYTES));
            owners.set(owner.toString('hex'), owner);
          }
        }
        return [...owners.values()].filter((owner) => {
          if (owner.equals(myOwner) || ownerRuns(owner)) return false;
          const by = recovererOf(owner);
          return by === undefined || by.equals(myOwner) || !ownerRuns(by);
        });
      });
    },
    claim(owner) {
      return guarded('journal_claim', () => {
        if (ownerRuns(owner)) return undefined;
        const claimed = writeNewest((db) => {
          const by = recovererOf(owner, db);
          if (by !== undefined && !by.equals(myOwner) && ownerRuns(by)) return false;
          db.putSync(recovererKey(owner), myOwner);
          return true;
        });
        if (claimed !== true) return undefined;
        // Fresh snapshots: the cached read transactions are renewed only between event-loop turns.
        current.db.resetReadTxn();
        previous?.db.resetReadTxn();
        const entries = journalOf(owner).map(([k, v]) => decodeEntry(k.readDoubleBE(1 + OWNER_BYTES), v));
        return entries.length > 0 ? entries : undefined;
      });
    },
    recovered(owner, entries) {
      guarded('journal_recovered', () => {
        const drain = entries.reduce((m, e) => Math.max(m, e.drain), 0);
        const progress = Buffer.alloc(1 + OWNER_BYTES);
        progress[0] = PROGRESS;
        progress.set(owner, 1);
        // Progress first (newest generation, with the entries held there), then the older
        // generation's entries: a crash in between leaves entries whose re-send is dropped by
        // the aggregator and whose marks are committed already.
        writeNewest((db) => {
          const had = db.getBinary(progress);
          if (had === undefined || had.readUInt32BE(0) < drain) db.putSync(progress, progressBytes(drain));
          for (const e of entries) db.removeSync(journalKey(owner, e.sequence));
          db.removeSync(recovererKey(owner));
          return undefined;
        });
        const old = previous;
        if (old !== undefined) {
          old.db.transactionSync(() => {
            for (const e of entries) old.db.removeSync(journalKey(owner, e.sequence));
            old.db.removeSync(recovererKey(owner));
          });
        }
      });
    },
  };

  /** Who holds the recovery of `owner`'s journal, read inside `db`'s transaction or from both generations. */
  function recovererOf(owner: Uint8Array, db?: RootDatabase<Buffer, Buffer>): Buffer | undefined {
    const key = recovererKey(owner);
    const found = (db ?? current.db).getBinary(key) ?? (db === undefined || db === current.db ? previous?.db.getBinary(key) : undefined);
    return found === undefined ? undefined : Buffer.from(found);
  }

  return {
    journal,
    claim(site, ids) {
      if (closed) throw new Error('the dedup store is closed');
      const keys = ids.map((id) => (id === undefined ? undefined : hash(site, id)));
      if (keys.every((k) => k === undefined)) return { kind: 'ok', duplicate: ids.map(() => false) };
      try {
        if (broken) reopen();
        return retried('claim', () => {
          for (;;) {
            const r = claimOnce(ids, keys);
            if (r !== 'follow') return r;
            follow();
          }
        });
      } catch (e) {
        // The transaction was rolled back: nothing is marked, and the caller counts nothing.
        failed('claim', e);
        return { kind: 'unavailable' };
      }
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
      const b = Buffer.alloc(4);
      b.writeUInt32BE(drains);
      try {
        if (broken) reopen();
        retried('acknowledged', () => {
          for (;;) {
            const r = current.db.transactionSync(() => {
              if (current.db.getBinary(SUCCESSOR_KEY) !== undefined) return ABORT;
              current.db.putSync(myProgressKey, b);
              return undefined;
            }) as unknown;
            if (r !== ABORT) return;
            follow();
          }
        });
        acknowledgedDrain = drains;
      } catch (e) {
        // Not recorded: this process's marks stay pending (its own retries stay duplicates, other
        // processes answer in_flight) until the next acknowledged flush records it.
        failed('acknowledged', e);
      }
    },
    maintain() {
      if (closed) return;
      try {
        if (broken) reopen();
        while (follow());
        if (now() - current.startMs >= o.windowMs) {
          const next = current.seq + 1;
          // Created whole before it is named, so a process that follows finds it.
          createGeneration(next);
          const r = current.db.transactionSync(() => {
            if (current.db.getBinary(SUCCESSOR_KEY) !== undefined) return ABORT;
            const b = Buffer.alloc(4);
            b.writeUInt32BE(next);
            current.db.putSync(SUCCESSOR_KEY, b);
            return undefined;
          }) as unknown;
          if (r !== ABORT) log({ event: 'dedup_generation_started', generation: next });
          while (follow());
        }
        // Everything before the previous generation is older than the window. Unlinking a file
        // another process still maps is safe (it keeps the inode, and finds the successor named
        // in it at its next claim); the name is never opened again for writing (openExisting).
        const keep = previous?.seq ?? current.seq;
        for (const seq of existing()) {
          if (seq >= keep) continue;
          rmSync(fileOf(o.dir, seq), { force: true });
          rmSync(`${fileOf(o.dir, seq)}-lock`, { force: true });
          log({ event: 'dedup_generation_expired', generation: seq });
        }
        // Temporary files of creators that died before linking theirs.
        for (const f of readdirSync(o.dir)) {
          const m = /^tmp-(\d+)-\d+-\d+\.mdb(-lock)?$/.exec(f);
          if (m !== null && Number(m[1]) !== me.pid && processStart(Number(m[1])) === undefined) rmSync(join(o.dir, f), { force: true });
        }
      } catch (e) {
        failed('maintain', e);
      }
    },
    stats() {
      let bytes = 0;
      // Blocks in use (the file may be sparse).
      for (const seq of existing()) bytes += statSync(fileOf(o.dir, seq)).blocks * 512;
      return { generations: [previous?.seq, current.seq].filter((s): s is number => s !== undefined), currentStartMs: current.startMs, unacknowledgedDrains: drains - Math.max(acknowledgedDrain, acknowledgedDrainRecorded), bytes };
    },
    close() {
      if (closed) return;
      closed = true;
      openInThisProcess.delete(nonce);
      for (const g of [previous, current]) {
        try {
          g?.db.close();
        } catch (e) {
          log({ event: 'dedup_store_failed', op: 'close', error: errorMessage(e) });
        }
      }
    },
  };
}

/** An entry's value: drain (u32), record count (u32), then per record partition (i32, -1: by key), key length (u32), key, value length (u32), value. */
function encodeEntry(e: JournalEntry): Buffer {
  const keys = e.records.map((r) => Buffer.from(r.key));
  let size = 8;
  e.records.forEach((r, i) => (size += 12 + (keys[i] as Buffer).length + r.value.length));
  const b = Buffer.allocUnsafe(size);
  b.writeUInt32BE(e.drain, 0);
  b.writeUInt32BE(e.records.length, 4);
  let at = 8;
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

function decodeEntry(sequence: number, b: Buffer): JournalEntry {
  const drain = b.readUInt32BE(0);
  const n = b.readUInt32BE(4);
  const records: PartialsMessage[] = [];
  let at = 8;
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
