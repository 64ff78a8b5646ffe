/**
 * The Node edge's retry deduplication (ADR 0010): one on-disk store per machine, shared by every
 * edge process that uses the same `DEDUP_DIR`, kept across crashes and restarts.
 *
 * Layout: LMDB environments (memory-mapped B-trees, safe across processes) named
 * `gen-<n>.mdb`, one per generation. A key is the first 16 bytes of SHA-256(site, NUL,
 * messageId); its value is `C` (committed: the event is in Kafka) or `P` + pid + process start
 * time + store nonce (pending: the event sits in that process's memory, in an envelope not yet
 * acknowledged). One-byte keys hold a generation's start time and its successor.
 *
 * Expiry without scans: lookups read the current and the previous generation; when the current
 * one is older than the window, the next is created and the one before the previous is deleted
 * as a file. A key is remembered between `windowMs` and `2 × windowMs`.
 *
 * Crash safety: a pending mark counts as absent once its process is gone (its pid is not
 * running, or runs a process that started at another time, or the store was closed), so the retry of an event that
 * never reached Kafka is counted; a pending mark of a live process makes another process answer
 * 503 `in_flight` (nothing counted) until the owner's flush is acknowledged and the mark turns
 * committed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ABORT, open, type RootDatabase } from 'lmdb';
import type { ClaimResult, Deduplicator } from '../pipeline/dedup.ts';
import type { EdgeLog } from '../ports.ts';

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
}

export interface DedupStore extends Deduplicator {
  /** Rotates generations when due and deletes expired ones; call every few seconds. */
  maintain(): void;
  stats(): { generations: number[]; currentStartMs: number; pendingMarks: number; bytes: number };
  close(): void;
}

const COMMITTED = Buffer.from('C');
const PENDING = 0x50; // 'P'
/** 'P', pid (u32), process start (f64), store nonce (u32). */
const PENDING_BYTES = 17;
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
  return createHash('sha256').update(site).update('\u0000').update(messageId).digest().subarray(0, 16);
}

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
  const pendingValue = Buffer.alloc(PENDING_BYTES);
  pendingValue[0] = PENDING;
  pendingValue.writeUInt32BE(me.pid, 1);
  pendingValue.writeDoubleBE(me.start, 5);
  pendingValue.writeUInt32BE(nonce, 13);

  mkdirSync(o.dir, { recursive: true });

  function openGeneration(seq: number): Generation {
    // noSync: a commit is in the page cache, which survives a process crash; after a machine
    // crash the last marks may be lost (those retries count twice), never an event.
    const db = open<Buffer, Buffer>({ path: fileOf(o.dir, seq), encoding: 'binary', keyEncoding: 'binary', compression: false, cache: false, noSync: true, overlappingSync: false });
    // The first opener sets the start time.
    const startMs = db.transactionSync(() => {
      let start = db.getBinary(START_KEY);
      if (start === undefined) {
        const b = Buffer.alloc(8);
        b.writeDoubleBE(now());
        db.putSync(START_KEY, b);
        start = b;
      }
      return start.readDoubleBE(0);
    });
    return { seq, db, startMs };
  }

  function existing(): number[] {
    return readdirSync(o.dir)
      .map((f) => FILE.exec(f)?.[1])
      .filter((s): s is string => s !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }

  const seqs = existing();
  let current = openGeneration(seqs.at(-1) ?? 1);
  let previous: Generation | undefined = seqs.includes(current.seq - 1) ? openGeneration(current.seq - 1) : undefined;
  // Marks claimed since the last drain, and marks drained but not yet acknowledged.
  let fresh: Buffer[] = [];
  let sealed: Buffer[] = [];
  let closed = false;

  /** Moves on to the successor of the current generation, if it has one. */
  function follow(): boolean {
    const next = current.db.getBinary(SUCCESSOR_KEY);
    if (next === undefined) return false;
    const seq = next.readUInt32BE(0);
    const old = previous;
    previous = current;
    current = openGeneration(seq);
    old?.db.close();
    // The previous generation no longer changes: read it from a snapshot taken after its last write.
    previous.db.resetReadTxn();
    return true;
  }

  /** Whether the process (and store) that made a pending mark still runs. */
  function ownerAlive(value: Buffer): boolean {
    if (value.length !== PENDING_BYTES) return false;
    const pid = value.readUInt32BE(1);
    const start = value.readDoubleBE(5);
    if (pid === me.pid && start === me.start) return openInThisProcess.has(value.readUInt32BE(13));
    return alive(pid, start);
  }

  type State = 'absent' | 'committed' | 'own' | 'busy';

  function stateIn(db: RootDatabase<Buffer, Buffer>, key: Uint8Array): State | undefined {
    const v = db.getBinary(key as Buffer);
    if (v === undefined) return undefined;
    if (v[0] !== PENDING) return 'committed';
    if (v.compare(pendingValue) === 0) return 'own';
    return ownerAlive(v) ? 'busy' : 'absent';
  }

  function claimOnce(site: string, ids: ReadonlyArray<string | undefined>, keys: Array<Uint8Array | undefined>): ClaimResult | 'follow' {
    const marked: Buffer[] = [];
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
          current.db.putSync(key as Buffer, pendingValue);
          marked.push(key as Buffer);
          duplicate[i] = false;
        } else {
          duplicate[i] = true;
        }
      }
      return undefined;
    }) as unknown;
    if (r === ABORT && !busy) return 'follow';
    if (busy) return { kind: 'busy' };
    for (const m of marked) fresh.push(m);
    return { kind: 'ok', duplicate };
  }

  return {
    claim(site, ids) {
      if (closed) throw new Error('the dedup store is closed');
      const keys = ids.map((id) => (id === undefined ? undefined : hash(site, id)));
      if (keys.every((k) => k === undefined)) return { kind: 'ok', duplicate: ids.map(() => false) };
      for (;;) {
        const r = claimOnce(site, ids, keys);
        if (r !== 'follow') return r;
        follow();
      }
    },
    drained() {
      if (fresh.length === 0) return;
      sealed = sealed.length === 0 ? fresh : sealed.concat(fresh);
      fresh = [];
    },
    acknowledged() {
      if (sealed.length === 0 || closed) return;
      const marks = sealed;
      sealed = [];
      for (;;) {
        const r = current.db.transactionSync(() => {
          if (current.db.getBinary(SUCCESSOR_KEY) !== undefined) return ABORT;
          for (const key of marks) current.db.putSync(key, COMMITTED);
          return undefined;
        }) as unknown;
        if (r !== ABORT) return;
        follow();
      }
    },
    maintain() {
      if (closed) return;
      while (follow());
      if (now() - current.startMs >= o.windowMs) {
        const next = current.seq + 1;
        // Created before it is named, so a process that follows finds it.
        openGeneration(next).db.close();
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
      // Everything before the previous generation is older than the window.
      const keep = previous?.seq ?? current.seq;
      for (const seq of existing()) {
        if (seq >= keep) continue;
        rmSync(fileOf(o.dir, seq), { force: true });
        rmSync(`${fileOf(o.dir, seq)}-lock`, { force: true });
        log({ event: 'dedup_generation_expired', generation: seq });
      }
    },
    stats() {
      let bytes = 0;
      for (const seq of existing()) bytes += statSync(fileOf(o.dir, seq)).size;
      return { generations: [previous?.seq, current.seq].filter((s): s is number => s !== undefined), currentStartMs: current.startMs, pendingMarks: fresh.length + sealed.length, bytes };
    },
    close() {
      if (closed) return;
      closed = true;
      openInThisProcess.delete(nonce);
      previous?.db.close();
      current.db.close();
    },
  };
}
