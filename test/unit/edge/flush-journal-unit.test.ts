import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PartialsMessage } from '../../../core/kafka/partials-router.ts';
import { openDedupStore, type DedupStore } from '../../../edge/node/dedup-store.ts';
import { createFlushJournal, type FlushJournal } from '../../../edge/node/flush-journal.ts';
import type { PartialRecords } from '../../../core/kafka/pipeline-producer.ts';
import type { RejectedRecord } from '../../../schemas/rejected-record.ts';
import type { PipelineSink } from '../../../shared/ports/pipeline-sink.ts';

// The flush journal (ADR 0010, "The flush journal"): a process that dies after Kafka stored its
// envelope but before it recorded the acknowledgement must not let the retries of those events
// count again. Several stores on one directory stand for several edge processes (`dead` says
// which are gone); Kafka is a fake of our records port; "the aggregator" counts an envelope's
// events unless its (source, sequence) is at or below the last one seen for that source, as
// core/aggregator/partition-aggregator.ts does.
const dirs: string[] = [];
const stores: DedupStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

class Crash extends Error {}

interface FakeKafka {
  log: PartialsMessage[];
  rejected: RejectedRecord[];
  down: boolean;
}

/** Events counted by an aggregator reading the log, per messageId. */
function counted(kafka: FakeKafka): Map<string, number> {
  const last = new Map<string, number>();
  const out = new Map<string, number>();
  for (const r of kafka.log) {
    const { sequence, ids } = JSON.parse(r.value.toString()) as { sequence: number; ids: string[] };
    const seen = last.get(r.key);
    if (seen !== undefined && sequence <= seen) continue;
    last.set(r.key, sequence);
    for (const id of ids) out.set(id, (out.get(id) ?? 0) + 1);
  }
  return out;
}

function records(kafka: FakeKafka, sends: { n: number }): PipelineSink & PartialRecords {
  const routePartials: PartialRecords['routePartials'] = (m) => [{ key: m.key, value: Buffer.from(m.value), partition: 0 }];
  const sendPartialRecords: PartialRecords['sendPartialRecords'] = async (rs) => {
    sends.n++;
    await Promise.resolve();
    if (kafka.down) throw new Error('broker unreachable');
    for (const r of rs) kafka.log.push(r);
  };
  return {
    routePartials,
    sendPartialRecords,
    sendPartials: (m) => sendPartialRecords(routePartials(m)),
    async sendRejected(records) {
      await Promise.resolve();
      if (kafka.down) throw new Error('broker unreachable');
      kafka.rejected.push(...records);
    },
  };
}

type CrashPoint = 'before-journal' | 'before-send' | 'after-send' | 'after-ack';

interface Proc {
  store: DedupStore;
  journal: FlushJournal;
  sends: { n: number };
  orphanCalls: { n: number };
  /** Claims the ids (as ingest does) and buffers the new ones; the claim's kind. */
  accept(ids: string[]): string;
  /** One flush of everything accepted, as edge/flusher.ts does it, optionally dying at `crash`. */
  flush(crash?: CrashPoint): Promise<void>;
}

function world() {
  const dir = mkdtempSync(join(tmpdir(), 'flush-journal-'));
  dirs.push(dir);
  const dead = new Set<number>();
  const kafka: FakeKafka = { log: [], rejected: [], down: false };
  function proc(pid: number): Proc {
    const orphanCalls = { n: 0 };
    const store = openDedupStore({ dir, windowMs: 3_600_000, process: { pid, start: pid * 10 }, processAlive: (p, start) => !dead.has(p) && start === p * 10, orphanJournalFound: () => void orphanCalls.n++ });
    stores.push(store);
    const sends = { n: 0 };
    let crashAfterSend = false;
    const journal = createFlushJournal({
      store,
      sink: records(kafka, sends),
      afterKafkaAck: () => {
        if (crashAfterSend) throw new Crash('SIGKILL after the Kafka acknowledgement');
      },
    });
    let buffer: string[] = [];
    const unsent: Array<{ key: string; bytes: Buffer }> = [];
    let sequence = pid * 1000;
    const die = (): void => {
      dead.add(pid);
    };
    return {
      store,
      journal,
      sends,
      orphanCalls,
      accept(ids) {
        const r = store.claim('site', ids);
        if (r.kind === 'ok') ids.forEach((id, i) => r.duplicate[i] || buffer.push(id));
        return r.kind;
      },
      async flush(crash) {
        if (crash === 'before-journal') return die();
        store.drained();
        if (buffer.length > 0) {
          const bytes = Buffer.from(JSON.stringify({ sequence: ++sequence, ids: buffer }));
          const envelope = { key: `src-${pid}`, sequence, bytes, rows: buffer.length };
          buffer = [];
          journal.journal([envelope]);
          unsent.push(envelope);
        }
        if (crash === 'before-send') return die();
        crashAfterSend = crash === 'after-send';
        // As the flusher: unacknowledged envelopes first, in order, the same bytes each time.
        while (unsent.length > 0) {
          const envelope = unsent[0] as { key: string; bytes: Buffer };
          try {
            await journal.sink.sendPartials({ key: envelope.key, value: envelope.bytes });
          } catch (e) {
            if (e instanceof Crash) return die();
            throw e;
          }
          unsent.shift();
        }
        if (crash === 'after-ack') return die();
        store.acknowledged();
      },
    };
  }
  return { proc, kafka, dead };
}

const ids = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * A world where process 1 (`a`) accepted `accepted` and died at `crash` during its flush;
 * processes 2 (`b`) and, with `procs: 3`, 3 (`c`) share its directory, opened before it died.
 */
async function crashedWorld(crash: CrashPoint, accepted: string[], procs: 2 | 3 = 2) {
  const w = world();
  const a = w.proc(1);
  const b = w.proc(2);
  const c = procs === 3 ? w.proc(3) : undefined;
  expect(a.accept(accepted)).toBe('ok');
  await a.flush(crash);
  return { w, a, b, c: c as Proc };
}

/** A retry of `retried` on `p` is a duplicate through and through, and the aggregator counted each of them once. */
function expectCountedOnce(w: ReturnType<typeof world>, p: Proc, retried: string[]): void {
  expect(p.store.claim('site', retried)).toEqual({ kind: 'ok', duplicate: retried.map(() => true) });
  expect([...counted(w.kafka).entries()].sort()).toEqual(retried.map((id) => [id, 1]).sort());
}

describe('flush journal: a dead edge process\'s flush in Kafka is counted once', () => {
  it('crash before the journal write: the events never left memory, the retry counts', async () => {
    const { w, b } = await crashedWorld('before-journal', ids('e', 5));
    expect(b.accept(ids('e', 5))).toBe('ok');
    await b.flush();
    expectCountedOnce(w, b, ids('e', 5));
  });

  it('crash after the journal write, before the send: the retry waits (busy), recovery sends the envelope, then the retry is a duplicate', async () => {
    const { w, b } = await crashedWorld('before-send', ids('e', 5));
    expect(w.kafka.log).toHaveLength(0);
    expect(b.accept(ids('e', 5))).toBe('busy');
    await settle();
    expect(b.orphanCalls.n).toBe(1);
    expect(await b.journal.recover()).toBe(1);
    expect(b.accept(ids('e', 5))).toBe('ok');
    expect(b.store.claim('site', ids('e', 5))).toEqual({ kind: 'ok', duplicate: [true, true, true, true, true] });
    await b.flush();
    expect([...counted(w.kafka).entries()].sort()).toEqual(ids('e', 5).map((id) => [id, 1]));
  });

  it('crash after Kafka acknowledged, before it was recorded: busy, then recovered; the re-send is dropped by sequence and the retry is a duplicate', async () => {
    const { w, b } = await crashedWorld('after-send', ids('e', 5));
    expect(w.kafka.log).toHaveLength(1);
    // Without the journal this retry counted again (the hole this closes).
    expect(b.accept(ids('e', 5))).toBe('busy');
    expect(await b.journal.recover()).toBe(1);
    expect(w.kafka.log).toHaveLength(2);
    expectCountedOnce(w, b, ids('e', 5));
  });

  it('crash after the acknowledgement was recorded, before the flusher\'s own acknowledged(): the retry is a duplicate at once', async () => {
    const { w, b } = await crashedWorld('after-ack', ids('e', 5));
    expect(b.store.claim('site', ids('e', 5))).toEqual({ kind: 'ok', duplicate: [true, true, true, true, true] });
    expect(await b.journal.recover()).toBe(0);
    expect([...counted(w.kafka).values()]).toEqual([1, 1, 1, 1, 1]);
  });

  it('marks of a later drain that never left memory stay absent beside a journaled one', async () => {
    const { w, a, b } = await crashedWorld('after-send', ids('sent', 3));
    // Accepted after that drain: only in a's memory when it died.
    a.accept(ids('mem', 2));
    expect(b.accept(ids('mem', 2))).toBe('ok');
    expect(b.accept(ids('sent', 3))).toBe('busy');
    await b.journal.recover();
    expect(b.accept(ids('sent', 3))).toBe('ok');
    await b.flush();
    const c = counted(w.kafka);
    expect([...c.keys()].sort()).toEqual([...ids('mem', 2), ...ids('sent', 3)].sort());
    expect([...c.values()].every((n) => n === 1)).toBe(true);
  });

  it('a drain split over two envelopes: after the first is acknowledged the drain is not yet committed', async () => {
    const w = world();
    const a = w.proc(1);
    const b = w.proc(2);
    a.accept([...ids('one', 2), ...ids('two', 2)]);
    a.store.drained();
    const e1 = { key: 'src-1', sequence: 11, bytes: Buffer.from(JSON.stringify({ sequence: 11, ids: ids('one', 2) })), rows: 2 };
    const e2 = { key: 'src-1', sequence: 12, bytes: Buffer.from(JSON.stringify({ sequence: 12, ids: ids('two', 2) })), rows: 2 };
    a.journal.journal([e1, e2]);
    await a.journal.sink.sendPartials({ key: e1.key, value: e1.bytes });
    w.dead.add(1); // dies before sending the second
    // The second envelope's events are not in Kafka: never a duplicate yet, busy until re-sent.
    expect(b.accept(ids('two', 2))).toBe('busy');
    expect(b.accept(ids('one', 2))).toBe('busy');
    expect(await b.journal.recover()).toBe(1);
    expectCountedOnce(w, b, [...ids('one', 2), ...ids('two', 2)]);
  });

  it('two recoverers racing: one takes the journal, the envelope is re-sent once', async () => {
    const { w, b, c } = await crashedWorld('after-send', ids('e', 4), 3);
    // Both see the orphan before either takes it: the take is one transaction, one wins.
    const [ob, oc] = [b.store.journal.orphans(), c.store.journal.orphans()];
    expect(ob).toHaveLength(1);
    expect(oc).toHaveLength(1);
    expect(b.store.journal.claim(ob[0] as Buffer)).toHaveLength(1);
    expect(c.store.journal.claim(oc[0] as Buffer)).toBeUndefined();
    expect(c.store.journal.orphans()).toEqual([]);
    const [rb, rc] = await Promise.all([b.journal.recover(), c.journal.recover()]);
    expect(rb + rc).toBe(1);
    expect(w.kafka.log.filter((r) => r.key === 'src-1')).toHaveLength(2);
    expectCountedOnce(w, b, ids('e', 4));
  });

  it('a recoverer that dies mid-recovery leaves the journal to the next one', async () => {
    const { w, b, c } = await crashedWorld('after-send', ids('e', 4), 3);
    w.kafka.down = true;
    expect(await b.journal.recover()).toBe(0); // claimed by b, re-send failed
    expect(await c.journal.recover()).toBe(0); // b lives and holds it
    expect(c.accept(ids('e', 4))).toBe('busy');
    w.dead.add(2);
    w.kafka.down = false;
    expect(await c.journal.recover()).toBe(1);
    expectCountedOnce(w, c, ids('e', 4));
  });

  it('a re-send that fails keeps the journal (retries stay busy) and is retried later', async () => {
    const { w, b } = await crashedWorld('before-send', ids('e', 3));
    w.kafka.down = true;
    expect(await b.journal.recover()).toBe(0);
    expect(b.accept(ids('e', 3))).toBe('busy');
    w.kafka.down = false;
    expect(await b.journal.recover()).toBe(1);
    expect(b.store.claim('site', ids('e', 3))).toEqual({ kind: 'ok', duplicate: [true, true, true] });
    expect(await b.journal.recover()).toBe(0);
    expect([...counted(w.kafka).values()]).toEqual([1, 1, 1]);
  });

  it('a live process\'s own failed send is not anyone\'s to recover; its next flush sends the same records', async () => {
    const w = world();
    const a = w.proc(1);
    const b = w.proc(2);
    a.accept(ids('e', 3));
    w.kafka.down = true;
    await expect(a.flush()).rejects.toThrow('broker unreachable');
    expect(await b.journal.recover()).toBe(0);
    expect(b.accept(ids('e', 3))).toBe('busy');
    w.kafka.down = false;
    await a.flush();
    expectCountedOnce(w, b, ids('e', 3));
  });

  it('a store that cannot journal refuses to send (the flush fails) instead of sending unjournaled', async () => {
    const w = world();
    const a = w.proc(1);
    a.accept(ids('e', 2));
    const put = a.store.journal.put.bind(a.store.journal);
    let failing = true;
    a.store.journal.put = (entries) => {
      if (failing) throw new Error('disk full');
      put(entries);
    };
    a.store.drained();
    const bytes = Buffer.from(JSON.stringify({ sequence: 7, ids: ids('e', 2) }));
    a.journal.journal([{ key: 'src-1', sequence: 7, bytes, rows: 2 }]);
    await expect(a.journal.sink.sendPartials({ key: 'src-1', value: bytes })).rejects.toThrow('disk full');
    expect(w.kafka.log).toHaveLength(0);
    // The flusher sends the same envelope again: journaled first this time.
    failing = false;
    await a.journal.sink.sendPartials({ key: 'src-1', value: bytes });
    expect(w.kafka.log).toHaveLength(1);
    expect(a.store.journal.orphans()).toEqual([]);
  });

  it('passes rejected records straight to Kafka, failing as Kafka fails, with nothing journaled', async () => {
    const w = world();
    const a = w.proc(1);
    const record: RejectedRecord = { site: 'site', received_at: '2026-12-06T00:00:00.000Z', index: 0, message_id: null, errors: [], event: {} };
    w.kafka.down = true;
    await expect(a.journal.sink.sendRejected([record])).rejects.toThrow('broker unreachable');
    w.kafka.down = false;
    await a.journal.sink.sendRejected([record]);
    expect(w.kafka.rejected).toEqual([record]);
    expect(w.kafka.log).toHaveLength(0);
  });
});
