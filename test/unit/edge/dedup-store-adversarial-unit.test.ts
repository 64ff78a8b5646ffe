import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { DatabaseSync, type DatabaseSyncInstance } from '@photostructure/sqlite';
import type { PartialsMessage } from '../../../core/kafka/partials-router.ts';
import { DEDUP_FILE, openDedupStore, type DedupStore, type DedupStoreOptions } from '../../../edge/node/dedup-store.ts';
import { flushAcknowledged, markTables, ok } from '../../support/dedup-store.ts';
import { createFlushJournal, type FlushJournal } from '../../../edge/node/flush-journal.ts';
import type { PartialRecords } from '../../../core/kafka/pipeline-producer.ts';
import type { PipelineSink } from '../../../shared/ports/pipeline-sink.ts';

// Adversarial cases for the Node edge's retry dedup store on SQLite (ADR 0010, "The store on
// SQLite"): generation switches racing acknowledgements and journal recovery, stores that lag
// several generations, journal writes that fail part-way, dead and closed owners. Several stores
// on one directory in this process stand for several edge processes: each has its own pid in its
// marks, and `dead` says which of them are gone (as in dedup-store-unit.test.ts). "Kafka" is a
// fake of our records port; "the aggregator" counts an envelope's ids unless its (source,
// sequence) is at or below the last one seen for that source (core/aggregator/partition-aggregator.ts).
const W = 3_600_000;
const dirs: string[] = [];
const stores: DedupStore[] = [];
const held: DatabaseSyncInstance[] = [];
afterEach(() => {
  for (const db of held.splice(0)) {
    if (db.isTransaction) db.exec('ROLLBACK');
    db.close();
  }
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

class Crash extends Error {}

/** Kafka as the flush journal sees it (a fake of our sink port): one record per envelope, kept by `send`. */
function fakeKafkaSink(send: PartialRecords['sendPartialRecords']): PipelineSink & PartialRecords {
  const routePartials: PartialRecords['routePartials'] = (m) => [{ key: m.key, value: Buffer.from(m.value), partition: 0 }];
  return { routePartials, sendPartialRecords: send, sendPartials: (m) => send(routePartials(m)), sendRejected: async () => undefined };
}

interface Envelope {
  key: string;
  sequence: number;
  bytes: Buffer;
  rows: number;
}

interface Proc {
  store: DedupStore;
  journal: FlushJournal;
  /** Claims `ids` as ingest does and buffers the new ones; the claim's kind. */
  accept(ids: string[]): string;
  /** The flusher's drain: marks ride on it, the buffered ids become `parts` envelopes, journaled at once. */
  drain(parts?: number): void;
  /** Sends the oldest unacknowledged envelope; with `crashAfterKafkaAck` the process dies once Kafka has it, before recording it. */
  sendNext(o?: { crashAfterKafkaAck?: boolean }): Promise<void>;
  /** A whole flush: drains, sends every unacknowledged envelope in order, then tells the store the flush is acknowledged. */
  flush(): Promise<void>;
}

function world() {
  const dir = mkdtempSync(join(tmpdir(), 'dedup-adversarial-'));
  dirs.push(dir);
  const clock = { ms: Date.UTC(2026, 0, 1) };
  const dead = new Set<number>();
  /** Start time of the process now running under a pid, when it is not the first one (pid reuse). */
  const reused = new Map<number, number>();
  const kafka: PartialsMessage[] = [];
  const alive = (p: number, start: number): boolean => (reused.has(p) ? start === reused.get(p) : !dead.has(p) && start === p * 10);
  function store(pid: number, extra: Partial<DedupStoreOptions> = {}): DedupStore {
    const s = openDedupStore({ dir, windowMs: W, now: () => clock.ms, process: { pid, start: pid * 10 }, processAlive: alive, ...extra });
    stores.push(s);
    return s;
  }
  function proc(pid: number, extra: Partial<DedupStoreOptions> = {}): Proc {
    const s = store(pid, extra);
    let crashAfterAck = false;
    const records = fakeKafkaSink(async (rs) => {
      await Promise.resolve();
      for (const r of rs) kafka.push(r);
    });
    const journal = createFlushJournal({
      store: s,
      sink: records,
      afterKafkaAck: () => {
        if (crashAfterAck) throw new Crash('SIGKILL after the Kafka acknowledgement');
      },
    });
    let buffer: string[] = [];
    const unsent: Envelope[] = [];
    let sequence = pid * 1000;
    const sendNext = async (o: { crashAfterKafkaAck?: boolean } = {}): Promise<void> => {
      const e = unsent[0] as Envelope;
      crashAfterAck = o.crashAfterKafkaAck === true;
      try {
        await journal.sink.sendPartials({ key: e.key, value: e.bytes });
      } catch (err) {
        if (err instanceof Crash) {
          dead.add(pid);
          return;
        }
        throw err;
      }
      unsent.shift();
    };
    return {
      store: s,
      journal,
      accept(ids) {
        const r = s.claim('site', ids);
        if (r.kind === 'ok') ids.forEach((id, i) => r.duplicate[i] || buffer.push(id));
        return r.kind;
      },
      drain(parts = 1) {
        s.drained();
        if (buffer.length === 0) return;
        const size = Math.ceil(buffer.length / parts);
        const envelopes: Envelope[] = [];
        for (let i = 0; i < buffer.length; i += size) {
          const ids = buffer.slice(i, i + size);
          sequence++;
          envelopes.push({ key: `src-${pid}`, sequence, bytes: Buffer.from(JSON.stringify({ sequence, ids })), rows: ids.length });
        }
        buffer = [];
        journal.journal(envelopes);
        unsent.push(...envelopes);
      },
      sendNext,
      async flush() {
        this.drain();
        while (unsent.length > 0) await sendNext();
        s.acknowledged();
      },
    };
  }
  /** Another process inside a write transaction: holds the store's lock until `release`. */
  function lock(): { release(): void } {
    const db = new DatabaseSync(join(dir, DEDUP_FILE));
    held.push(db);
    db.exec('BEGIN IMMEDIATE');
    return { release: () => db.exec('ROLLBACK') };
  }
  /** Events counted by an aggregator reading the log, per id. */
  function counted(): Record<string, number> {
    const last = new Map<string, number>();
    const out: Record<string, number> = {};
    for (const r of kafka) {
      const { sequence, ids } = JSON.parse(r.value.toString()) as { sequence: number; ids: string[] };
      const seen = last.get(r.key);
      if (seen !== undefined && sequence <= seen) continue;
      last.set(r.key, sequence);
      for (const id of ids) out[id] = (out[id] ?? 0) + 1;
    }
    return out;
  }
  return { dir, clock, dead, reused, kafka, store, proc, lock, counted };
}



describe('flush journal written part-way: a later envelope journaled while an earlier one is not', () => {
  it('a drain whose journal write failed is not committed by the recovery of a later drain (its events would be lost)', async () => {
    const w = world();
    const a = w.proc(1, { busyTimeoutMs: 20 });
    const b = w.proc(2);
    expect(a.accept(['x'])).toBe('ok');
    // Another process holds the lock past a's timeout (e.g. a rotation dropping a large
    // generation): the journal write of drain 1 fails, so its envelope is not sent.
    const l = w.lock();
    a.drain();
    const first = a.sendNext();
    l.release();
    await expect(first).rejects.toThrow(/held the dedup store's lock/);
    // The next flush journals drain 2; a is SIGKILLed before it sends anything.
    expect(a.accept(['y'])).toBe('ok');
    a.drain();
    w.dead.add(1);
    expect(w.kafka).toHaveLength(0);

    expect(b.accept(['x'])).toBe('busy');
    await b.journal.recover();
    // x never reached Kafka before the recovery: either the recovery sent it, or its retry counts.
    expect(b.accept(['x', 'y'])).toBe('ok');
    await b.flush();
    expect(w.counted()).toEqual({ x: 1, y: 1 });
  });

  it('a split drain whose first envelope alone was journaled at its send: the second envelope\'s events are not lost', async () => {
    const w = world();
    const a = w.proc(1, { busyTimeoutMs: 20 });
    const b = w.proc(2);
    expect(a.accept(['p', 'q'])).toBe('ok');
    const l = w.lock();
    a.drain(2); // two envelopes (p), (q): their journal write fails
    l.release();
    // The flusher sends the first again: journaled now, Kafka has it, a dies before recording it.
    await a.sendNext({ crashAfterKafkaAck: true });
    expect(w.dead.has(1)).toBe(true);
    expect(w.counted()).toEqual({ p: 1 });

    expect(b.accept(['q'])).toBe('busy');
    await b.journal.recover();
    expect(b.accept(['p', 'q'])).toBe('ok');
    await b.flush();
    expect(w.counted()).toEqual({ p: 1, q: 1 });
  });
});

describe('generations: rotation racing acknowledgements, recovery and lagging stores', () => {
  it('a store idle for three windows claims, acknowledges and rotates on tables created after it last looked', () => {
    const w = world();
    const a = w.store(101);
    const b = w.store(202);
    expect(a.claim('s', ['old'])).toEqual(ok(false));
    flushAcknowledged(a);
    // b alone rotates three times: a's statements were prepared for marks_1, which is gone.
    for (let i = 0; i < 3; i++) {
      w.clock.ms += W;
      b.maintain();
    }
    expect(markTables(w.dir)).toEqual(['marks_3', 'marks_4']);
    expect(b.claim('s', ['b-new'])).toEqual(ok(false));
    // 'old' expired with marks_1: its retry counts again (later than the window); b's mark is pending.
    expect(a.claim('s', ['old', 'a-new'])).toEqual(ok(false, false));
    expect(a.claim('s', ['b-new'])).toEqual({ kind: 'busy' });
    flushAcknowledged(a);
    flushAcknowledged(b);
    expect(a.claim('s', ['b-new', 'a-new'])).toEqual(ok(true, true));
    expect(b.claim('s', ['old', 'a-new'])).toEqual(ok(true, true));
    w.clock.ms += W;
    a.maintain();
    expect(a.stats().generations).toEqual([4, 5]);
    expect(b.claim('s', ['old', 'a-new', 'b-new'])).toEqual(ok(true, true, true));
  });

  it('an acknowledgement recorded again in a later generation keeps the owner\'s progress alive with its marks', () => {
    const w = world();
    const a = w.store(101);
    const b = w.store(202);
    a.claim('s', ['m1']);
    flushAcknowledged(a); // progress of a written in generation 1
    w.clock.ms += W;
    b.maintain(); // generation 2
    a.claim('s', ['m2']); // in marks_2
    flushAcknowledged(a); // progress of a written again, now in generation 2
    w.clock.ms += W;
    b.maintain(); // generation 3: progress older than generation 2 is deleted, marks_1 dropped
    w.dead.add(101);
    // m2 (in the previous generation) is in Kafka: a retry is a duplicate, even with a gone.
    expect(b.claim('s', ['m2'])).toEqual(ok(true));
  });

  it('a recovery by a store that never refreshed its generation records progress that survives the next rotation', async () => {
    const w = world();
    const c = w.store(303); // rotates; never claims
    const b = w.proc(2); // recovers a's journal; has not touched the store since it opened
    w.clock.ms += W;
    c.maintain();
    w.clock.ms += W;
    c.maintain(); // generation 3
    const a = w.proc(1);
    expect(a.accept(['e'])).toBe('ok'); // in marks_3
    a.drain();
    await a.sendNext({ crashAfterKafkaAck: true }); // in Kafka, not recorded: a's journal holds it
    expect(c.claim('site', ['e'])).toEqual({ kind: 'busy' });
    expect(await b.journal.recover()).toBe(1);
    w.clock.ms += W;
    c.maintain(); // generation 4: marks_3 is the previous one, progress older than generation 3 goes
    expect(b.accept(['e'])).toBe('ok');
    await b.flush();
    expect(w.counted()).toEqual({ e: 1 });
  });

  it('a dead owner\'s journal outlives two rotations and is still re-sent before a retry may count', async () => {
    const w = world();
    const a = w.proc(1);
    const b = w.proc(2);
    a.accept(['late']);
    a.drain(); // journaled, then a dies before the send
    w.dead.add(1);
    // No live process ran recovery for two windows (b was stopped, say): its marks expired.
    for (let i = 0; i < 2; i++) {
      w.clock.ms += W;
      b.store.maintain();
    }
    expect(markTables(w.dir)).toEqual(['marks_2', 'marks_3']);
    // The journal is not tied to a generation: it is still there, and re-sent once.
    expect(await b.journal.recover()).toBe(1);
    expect(await b.journal.recover()).toBe(0);
    expect(w.counted()).toEqual({ late: 1 });
  });
});

describe('owners that are gone: closed stores, reused pids, recoverers', () => {
  it('the journal of a store closed in this process is recovered by another store of this process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dedup-adversarial-'));
    dirs.push(dir);
    const kafka: PartialsMessage[] = [];
    const records = fakeKafkaSink(async (rs) => {
      for (const r of rs) kafka.push(r);
    });
    // Real process identity: both stores belong to this very process.
    const a = openDedupStore({ dir, windowMs: W });
    const b = openDedupStore({ dir, windowMs: W });
    stores.push(a, b);
    const ja = createFlushJournal({ store: a, sink: records });
    const jb = createFlushJournal({ store: b, sink: records });
    expect(a.claim('site', ['m'])).toEqual(ok(false));
    a.drained();
    ja.journal([{ key: 'src-a', sequence: 1, bytes: Buffer.from('{"sequence":1,"ids":["m"]}'), rows: 1 }]);
    expect(await jb.recover()).toBe(0); // a is open: its journal is its own
    expect(b.claim('site', ['m'])).toEqual({ kind: 'busy' });
    a.close(); // its last flush never went out
    expect(b.claim('site', ['m'])).toEqual({ kind: 'busy' }); // journaled: it may be in Kafka
    expect(await jb.recover()).toBe(1);
    expect(kafka.map((r) => r.key)).toEqual(['src-a']);
    expect(b.claim('site', ['m'])).toEqual(ok(true));
  });

  it('a retry counted over a dead owner\'s mark is then held by its new owner, in the current generation and the previous one', () => {
    const w = world();
    const d = w.store(1);
    const b = w.store(2);
    const c = w.store(3);
    expect(d.claim('s', ['cur'])).toEqual(ok(false));
    w.clock.ms += W;
    c.maintain();
    expect(d.claim('s', ['prev'])).toEqual(ok(false)); // both only in d's memory when it dies
    w.clock.ms += W / 2;
    w.dead.add(1);
    // 'cur' lies in the previous generation, 'prev' in the current one: b counts both.
    expect(b.claim('s', ['cur', 'prev'])).toEqual(ok(false, false));
    // The marks are b's now: another process waits for b's flush instead of counting them again.
    expect(c.claim('s', ['cur'])).toEqual({ kind: 'busy' });
    expect(c.claim('s', ['prev'])).toEqual({ kind: 'busy' });
    flushAcknowledged(b);
    expect(c.claim('s', ['cur', 'prev'])).toEqual(ok(true, true));
  });

  it('a recoverer whose pid now runs another process is taken over', async () => {
    const w = world();
    const a = w.proc(1);
    const b = w.proc(2);
    a.accept(['e']);
    a.drain();
    w.dead.add(1);
    const owner = a.store.journal.owner;
    expect(b.store.journal.claim(owner)).toHaveLength(1); // b takes it, then dies before re-sending
    // pid 2 is reused by a process that started later: b is gone although its pid runs.
    w.reused.set(2, 99);
    const successor = w.store(2, { process: { pid: 2, start: 99 } });
    expect(successor.claim('site', ['e'])).toEqual({ kind: 'busy' });
    const c = w.proc(3);
    expect(c.store.journal.orphans().map((o) => o.toString('hex'))).toEqual([owner.toString('hex')]);
    expect(await c.journal.recover()).toBe(1);
    expect(c.accept(['e'])).toBe('ok');
    await c.flush();
    expect(w.counted()).toEqual({ e: 1 });
  });
});

describe('the database file', () => {
  it('keeps the write-ahead log bounded while several processes write in turn', () => {
    const w = world();
    const procs = [w.store(101), w.store(202), w.store(303)];
    for (let round = 0; round < 30; round++) {
      for (const [i, s] of procs.entries()) {
        const ids = Array.from({ length: 100 }, (_, j) => `r${round}-p${i}-${j}`);
        expect(s.claim('s', ids)).toEqual({ kind: 'ok', duplicate: ids.map(() => false) });
        flushAcknowledged(s);
      }
    }
    // Each commit writes a few dozen pages; checkpoints every 1,000 pages let the log start over.
    // Without them it holds every commit (about 20 MB here).
    expect(statSync(join(w.dir, `${DEDUP_FILE}-wal`)).size).toBeLessThan(8 * 1024 * 1024);
    expect(procs[0]?.claim('s', ['r0-p1-0', 'r29-p2-99'])).toEqual(ok(true, true));
  });

  it('refuses a file that is not a store, with SQLite\'s reason, and leaves it as it was', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dedup-adversarial-'));
    dirs.push(dir);
    const foreign = Buffer.from('not a database: somebody else\'s file\n'.repeat(200));
    writeFileSync(join(dir, DEDUP_FILE), foreign);
    expect(() => openDedupStore({ dir, windowMs: W })).toThrow(/file is not a database/);
    expect(readFileSync(join(dir, DEDUP_FILE)).equals(foreign)).toBe(true);
  });
});

describe('waiting for another process\'s lock', () => {
  it('a claim that finds the lock taken waits for it (its own polling) and then decides', async () => {
    const w = world();
    const a = w.store(101, { busyTimeoutMs: 10_000 });
    // Another process (a thread with its own connection) holds the write lock for a while.
    const state = new Int32Array(new SharedArrayBuffer(4));
    const holder = new Worker(
      `const { workerData } = require('node:worker_threads');
      const { DatabaseSync } = require(workerData.sqlite);
      const db = new DatabaseSync(workerData.path);
      db.exec('PRAGMA busy_timeout = 1000');
      db.exec('BEGIN IMMEDIATE');
      Atomics.store(workerData.state, 0, 1);
      Atomics.notify(workerData.state, 0);
      Atomics.wait(workerData.state, 0, 1, 150);
      db.exec('ROLLBACK');
      Atomics.store(workerData.state, 0, 2);
      db.close();`,
      { eval: true, workerData: { sqlite: createRequire(import.meta.url).resolve('@photostructure/sqlite'), path: join(w.dir, DEDUP_FILE), state } },
    );
    const exited = new Promise((resolve) => holder.once('exit', resolve));
    expect(Atomics.wait(state, 0, 0, 10_000)).not.toBe('timed-out');
    expect(Atomics.load(state, 0)).toBe(1);
    expect(a.claim('s', ['m'])).toEqual(ok(false));
    // The claim went through only once the holder had let go.
    expect(Atomics.load(state, 0)).toBe(2);
    await exited;
    flushAcknowledged(a);
    expect(w.store(202).claim('s', ['m'])).toEqual(ok(true));
  });
});
