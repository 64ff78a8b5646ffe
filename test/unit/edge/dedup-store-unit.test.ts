import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { DatabaseSync } from '@photostructure/sqlite';
import { DEDUP_FILE, openDedupStore, processRuns, processStart, type DedupStore, type DedupStoreOptions } from '../../../edge/node/dedup-store.ts';
import { flushAcknowledged, markTables, ok } from '../../support/dedup-store.ts';

// The shared on-disk store of the Node edge (ADR 0010). Several stores on one directory in this
// process stand for several edge processes: each has its own pid in its marks, and `alive` says
// which of those "processes" still run. test/integration/edge-dedup.test.ts does it with real ones.
const W = 3_600_000;
const dirs: string[] = [];
const stores: DedupStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});


function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'dedup-store-'));
  dirs.push(d);
  return d;
}

interface World {
  dir: string;
  clock: { ms: number };
  dead: Set<number>;
  store(pid: number, extra?: Partial<DedupStoreOptions>): DedupStore;
}

function world(): World {
  const dir = tempDir();
  const clock = { ms: Date.UTC(2026, 0, 1) };
  const dead = new Set<number>();
  return {
    dir,
    clock,
    dead,
    store(pid, extra = {}) {
      const s = openDedupStore({ dir, windowMs: W, now: () => clock.ms, process: { pid, start: pid * 10 }, processAlive: (p, start) => !dead.has(p) && start === p * 10, ...extra });
      stores.push(s);
      return s;
    },
  };
}


describe('dedup store (shared, on disk)', () => {
  it('counts a messageId once per site; ids without one always count', () => {
    const w = world();
    const a = w.store(101);
    expect(a.claim('s', ['m1', 'm2', 'm1', undefined, undefined])).toEqual(ok(false, false, true, false, false));
    expect(a.claim('s', ['m1'])).toEqual(ok(true)); // own pending: the envelope is re-sent after a failure
    expect(a.claim('t', ['m1'])).toEqual(ok(false)); // another site
    flushAcknowledged(a);
    expect(a.claim('s', ['m1', 'm3'])).toEqual(ok(true, false));
  });

  it('makes another live process answer busy while the mark is pending, and duplicate once committed', () => {
    const w = world();
    const a = w.store(101);
    const b = w.store(202);
    expect(a.claim('s', ['m1'])).toEqual(ok(false));
    // b holds none of a's events: nothing of its request may be counted, nor marked.
    expect(b.claim('s', ['m0', 'm1'])).toEqual({ kind: 'busy' });
    a.drained();
    expect(b.claim('s', ['m1'])).toEqual({ kind: 'busy' }); // drained, not yet acknowledged
    a.acknowledged();
    expect(b.claim('s', ['m0', 'm1'])).toEqual(ok(false, true));
    // m0 was not marked by the busy claim above.
    expect(a.claim('s', ['m0'])).toEqual({ kind: 'busy' });
  });

  it('counts the retry of an event whose process died before its flush was acknowledged', () => {
    const w = world();
    const a = w.store(101);
    const b = w.store(202);
    expect(a.claim('s', ['lost', 'kept'])).toEqual(ok(false, false));
    a.drained();
    // a is SIGKILLed: its envelope never reached Kafka. The retry must be counted, by b.
    w.dead.add(101);
    expect(b.claim('s', ['lost'])).toEqual(ok(false));
    flushAcknowledged(b);
    expect(b.claim('s', ['lost'])).toEqual(ok(true));
  });

  it('treats marks of an earlier incarnation with the same pid as absent (pid reuse)', () => {
    const w = world();
    const first = w.store(101);
    expect(first.claim('s', ['pending'])).toEqual(ok(false));
    first.drained();
    // pid 101 now runs another process (started at another time): the mark's process is gone.
    const other = w.store(202);
    expect(other.claim('s', ['pending'])).toEqual({ kind: 'busy' });
    const reused = openDedupStore({ dir: w.dir, windowMs: W, now: () => w.clock.ms, process: { pid: 202, start: 1 }, processAlive: (p, start) => p === 101 && start === 999 });
    stores.push(reused);
    expect(reused.claim('s', ['pending'])).toEqual(ok(false));
  });

  it('treats marks of a store closed in a still running process as absent', () => {
    const dir = tempDir();
    // Real process identity: both stores in this process.
    const a = openDedupStore({ dir, windowMs: W });
    const b = openDedupStore({ dir, windowMs: W });
    stores.push(a, b);
    expect(a.claim('s', ['m'])).toEqual(ok(false));
    expect(b.claim('s', ['m'])).toEqual({ kind: 'busy' });
    a.close(); // its final flush failed: the event never reached Kafka
    expect(b.claim('s', ['m'])).toEqual(ok(false));
  });

  it('keeps committed marks across close and reopen (restart after a crash)', () => {
    const w = world();
    const a = w.store(101);
    a.claim('s', ['m1', 'm2']);
    flushAcknowledged(a);
    a.claim('s', ['m3']); // pending when the process dies
    a.close();
    w.dead.add(101);
    const b = w.store(102);
    expect(b.claim('s', ['m1', 'm2', 'm3'])).toEqual(ok(true, true, false));
  });

  it('remembers a key between the window and twice the window, in at most two generations', () => {
    const w = world();
    const a = w.store(101);
    const b = w.store(202);
    const t0 = w.clock.ms;
    a.claim('s', ['early']);
    flushAcknowledged(a);
    w.clock.ms = t0 + W - 1;
    a.maintain();
    expect(a.stats().generations).toEqual([1]);
    a.claim('s', ['late']);
    flushAcknowledged(a);

    w.clock.ms = t0 + W; // the current generation is a window old: a new one starts
    a.maintain();
    expect(a.stats().generations).toEqual([1, 2]);
    // b has not run maintain(): its claim finds the successor and follows it.
    expect(b.claim('s', ['early', 'late', 'new'])).toEqual(ok(true, true, false));
    flushAcknowledged(b);
    expect(b.stats().generations).toEqual([1, 2]);

    w.clock.ms = t0 + 2 * W - 1;
    a.maintain();
    expect(a.claim('s', ['early'])).toEqual(ok(true));

    w.clock.ms = t0 + 2 * W; // generation 1 (early, late) is older than the window: deleted
    b.maintain();
    expect(markTables(w.dir)).toEqual(['marks_2', 'marks_3']);
    expect(a.stats().generations).toEqual([2, 3]);
    expect(a.claim('s', ['late', 'new'])).toEqual(ok(false, true));
  });

  it('commits marks claimed before a rotation with the acknowledgement recorded after it', () => {
    const w = world();
    const a = w.store(101);
    const b = w.store(202);
    a.claim('s', ['m1']);
    a.drained();
    w.clock.ms += W;
    b.maintain(); // rotates while a's mark is pending in generation 1
    expect(b.claim('s', ['m1'])).toEqual({ kind: 'busy' });
    a.acknowledged(); // recorded in generation 2, where a follows
    expect(b.claim('s', ['m1'])).toEqual(ok(true));
    w.dead.add(101); // a's acknowledgement outlives a
    expect(b.claim('s', ['m1'])).toEqual(ok(true));
    w.clock.ms += W;
    b.maintain(); // generation 1 (m1, claimed two windows ago) expires
    expect(b.claim('s', ['m1'])).toEqual(ok(false));
  });

  it('answers unavailable while another process holds the write lock past the busy timeout, marks nothing, and recovers', () => {
    const w = world();
    const events: Array<Record<string, unknown>> = [];
    const a = w.store(101, { busyTimeoutMs: 50, log: (e) => events.push(e) });
    // Another process in the middle of a long write transaction.
    const other = new DatabaseSync(join(w.dir, DEDUP_FILE));
    other.exec('BEGIN IMMEDIATE');
    try {
      expect(a.claim('s', ['m1'])).toEqual({ kind: 'unavailable' });
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    expect(events.map((e) => [e.event, e.op])).toEqual([['dedup_store_failed', 'claim']]);
    expect(String(events[0]?.error)).toMatch(/another process held the dedup store's lock for more than 50 ms/);
    // m1 was not marked: it counts when the request is retried.
    expect(a.claim('s', ['m1'])).toEqual(ok(false));
    flushAcknowledged(a);
    expect(w.store(202).claim('s', ['m1'])).toEqual(ok(true));
  });

  it('rolls the whole claim back when a check fails inside its transaction', () => {
    const w = world();
    const events: Array<Record<string, unknown>> = [];
    const b = w.store(202);
    expect(b.claim('s', ['m1'])).toEqual(ok(false)); // pending: checked inside a's claim transaction
    let faults = 1;
    const processAlive = (p: number, start: number): boolean => {
      if (faults-- > 0) throw new Error('cannot read /proc');
      return !w.dead.has(p) && start === p * 10;
    };
    const a = w.store(101, { processAlive, log: (e) => events.push(e) });
    // m2 comes first and is marked before m1's check throws: the rollback takes it back.
    expect(a.claim('s', ['m2', 'm1'])).toEqual({ kind: 'unavailable' });
    expect(events.map((e) => [e.event, e.op])).toEqual([['dedup_store_failed', 'claim']]);
    expect(a.claim('s', ['m2'])).toEqual(ok(false));
  });

  it('creates a fresh directory\'s first generation once when several stores open it, and removes the files of the former LMDB store (earlier versions)', () => {
    const w = world();
    writeFileSync(join(w.dir, 'gen-0000000001.mdb'), 'old');
    writeFileSync(join(w.dir, 'gen-0000000001.mdb-lock'), 'old');
    const events: Array<Record<string, unknown>> = [];
    const a = w.store(101, { log: (e) => events.push(e) });
    const b = w.store(202);
    expect(a.claim('s', ['m'])).toEqual(ok(false));
    flushAcknowledged(a);
    expect(b.claim('s', ['m'])).toEqual(ok(true));
    expect(readdirSync(w.dir).sort()).toEqual([DEDUP_FILE, `${DEDUP_FILE}-shm`, `${DEDUP_FILE}-wal`]);
    expect(markTables(w.dir)).toEqual(['marks_1']);
    expect(events).toContainEqual({ event: 'dedup_store_legacy_removed', files: 2 });
  });

  it('a hash collision makes the second event a duplicate (odds: 16-byte keys, see ADR 0010)', () => {
    const w = world();
    const collide = (): Uint8Array => new Uint8Array(16).fill(7);
    const a = w.store(101, { hash: collide });
    expect(a.claim('s', ['one', 'other'])).toEqual(ok(false, true));
    // With the real hash the two differ.
    const b = w.store(202, { dir: tempDir() });
    expect(b.claim('s', ['one', 'other'])).toEqual(ok(false, false));
  });

  it('marks claimed after a drain wait for the next acknowledgement', () => {
    const w = world();
    const a = w.store(101);
    const b = w.store(202);
    a.claim('s', ['first']);
    a.drained();
    a.claim('s', ['second']); // accumulated after the drain: not in the envelopes being sent
    a.acknowledged();
    expect(b.claim('s', ['first'])).toEqual(ok(true));
    expect(b.claim('s', ['second'])).toEqual({ kind: 'busy' });
    flushAcknowledged(a);
    expect(b.claim('s', ['second'])).toEqual(ok(true));
  });

  it('tells a running process from a killed one, and from another one with the same pid', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    const pid = child.pid as number;
    const start = processStart(pid);
    expect(start).toBeDefined();
    expect(processRuns(pid, start as number)).toBe(true);
    expect(processRuns(pid, (start as number) + 1)).toBe(false); // a pid reused by a later process
    expect(processRuns(process.pid, processStart(process.pid) as number)).toBe(true);
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(processRuns(pid, start as number)).toBe(false);
  });
});
