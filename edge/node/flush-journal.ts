/**
 * The Node edge's flush journal (ADR 0010, addendum "The flush journal"): closes the window in
 * which an envelope reached Kafka while its process died before recording the acknowledgement,
 * so the retries of its events were counted a second time.
 *
 * - Before an envelope is handed to Kafka, its exact records (split by cell, with partitions,
 *   under the process's source id and the envelope's sequence) are written to the dedup store
 *   together with the drain whose marks it carries ({@link FlushJournal.journal}).
 * - When Kafka acknowledges them, one transaction deletes the entry and raises the process's
 *   acknowledged drain, so its marks become committed.
 * - A pending mark of a dead process with a journal entry of its drain (or later) is answered
 *   `503 in_flight` and triggers {@link FlushJournal.recover}: a live process takes the dead
 *   owner's journal over (one transaction: never two recoverers), re-sends the records unchanged,
 *   and only once Kafka acknowledged them records the owner's drains acknowledged and deletes the
 *   journal. The aggregator drops a (sub-source, sequence) at or below the last it saw in that
 *   partition (core/aggregator/partition-aggregator.ts): an envelope that did reach Kafka is
 *   dropped, one that did not is counted, each once.
 *
 * Re-sending a dead process's envelopes is only exact because no process ever sends under that
 * source id again (a replaced cluster worker takes a new id, edge/node/cluster.ts): the replay
 * lands after every original in each partition.
 */
import type { PartialRecords } from '../../core/kafka/pipeline-producer.ts';
import type { PipelineSink } from '../../shared/ports/pipeline-sink.ts';
import type { EdgeLog } from '../ports.ts';
import type { DedupStore, JournalEntry, StoreOwner } from './dedup-store.ts';
import { errorMessage } from '../../shared/errors.ts';

/** An envelope the flusher just encoded (edge/flusher.ts `journal` hook). */
export interface EncodedForJournal {
  key: string;
  sequence: number;
  bytes: Uint8Array;
  rows: number;
}

export interface FlushJournal {
  /**
   * The sink to give the flusher: sends journaled envelopes as their journaled records, and
   * rejected records straight through. Same contract as the sink it wraps.
   */
  sink: PipelineSink;
  /** The flusher's hook, called synchronously right after a drain was encoded. */
  journal(envelopes: readonly EncodedForJournal[]): void;
  /**
   * Re-sends the journals of dead owners (at start-up, on a timer, and when a claim met one).
   * Never rejects; a failed re-send leaves the journal (and this process's claim on it) for the
   * next call. Resolves with the number of envelopes re-sent.
   */
  recover(): Promise<number>;
}

interface Pending extends JournalEntry {
  journaled: boolean;
}

/**
 * @example
 * ```ts
 * const journal = createFlushJournal({ store, sink: kafkaSink, log });
 * await journal.recover();
 * const edge = createEdge({ ..., sink: journal.sink, dedup: store, flusher: { journal: journal.journal } });
 * ```
 */
export function createFlushJournal(o: {
  store: DedupStore;
  /** Kafka (core/kafka/pipeline-producer.ts), or {@link wholeEnvelopeRecords} over an in-memory sink. */
  sink: PipelineSink & PartialRecords;
  log?: EdgeLog;
  /**
   * TEST ONLY: called after Kafka acknowledged a journaled envelope and before the
   * acknowledgement is recorded; test/integration/edge-journal.test.ts SIGKILLs the process
   * here (see TEST_ONLY_SIGKILL_AFTER_KAFKA_ACK in edge/node/server.ts). Never set in production.
   */
  afterKafkaAck?: () => void;
}): FlushJournal {
  const log: EdgeLog = o.log ?? (() => undefined);
  const journal = o.store.journal;
  // By the envelope's bytes (the flusher sends the very array it encoded), in sequence order.
  const pending = new Map<Uint8Array, Pending>();
  let recovering: Promise<number> | undefined;

  /**
   * Journals every entry not journaled yet, in one transaction: never a later envelope while an
   * earlier one is missing. Recovery re-sends a dead owner's journal and then commits its marks
   * up to the highest drain in it, so a gap (an earlier envelope never journaled, hence never
   * sent) would commit events that never reached Kafka: their retries would be dropped.
   */
  function writeUnjournaled(): void {
    const entries = [...pending.values()].filter((e) => !e.journaled).sort((x, y) => x.sequence - y.sequence);
    if (entries.length === 0) return;
    journal.put(entries);
    for (const e of entries) e.journaled = true;
  }

  /** The drain this process may record acknowledged once `sent` is: all marks up to it are in Kafka. */
  function acknowledgedThrough(sent: Pending): number {
    let next: Pending | undefined;
    for (const e of pending.values()) {
      if (e !== sent && e.sequence > sent.sequence && (next === undefined || e.sequence < next.sequence)) next = e;
    }
    // A later envelope of the same drain still to go: that drain is not complete yet.
    return next !== undefined && next.drain === sent.drain ? sent.drain - 1 : sent.drain;
  }

  async function recoverNow(): Promise<number> {
    let resent = 0;
    let owners: StoreOwner[];
    try {
      owners = journal.orphans();
    } catch {
      return 0; // logged by the store (dedup_store_failed)
    }
    for (const owner of owners) {
      let entries: JournalEntry[] | undefined;
      try {
        entries = journal.claim(owner);
      } catch {
        continue;
      }
      if (entries === undefined) continue;
      const who = { pid: owner.readUInt32BE(0), sequences: `${entries[0]?.sequence}..${entries.at(-1)?.sequence}` };
      try {
        // In sequence order, each once Kafka acknowledged the one before: per partition the
        // replay follows every original, so the aggregator drops what it already has.
        for (const e of entries) await o.sink.sendPartialRecords(e.records);
        journal.recovered(owner, entries);
        resent += entries.length;
        log({ event: 'flush_journal_recovered', owner_pid: who.pid, envelopes: entries.length, sequences: who.sequences });
      } catch (e) {
        // The claim stays ours: the next recover() (timer, or a retry of its events) tries again.
        log({ event: 'flush_journal_recovery_failed', owner_pid: who.pid, envelopes: entries.length, error: errorMessage(e) });
      }
    }
    return resent;
  }

  return {
    journal(envelopes) {
      let added = 0;
      const drain = journal.drain();
      for (const e of envelopes) {
        // Heartbeats carry no events and no marks: nothing to recover.
        if (e.rows === 0) continue;
        const entry: Pending = { sequence: e.sequence, drain, records: o.sink.routePartials({ key: e.key, value: e.bytes }), journaled: false };
        pending.set(e.bytes, entry);
        added++;
      }
      if (added === 0) return;
      try {
        // With any earlier entry whose write failed.
        writeUnjournaled();
      } catch {
        // Logged by the store. Not sent until journaled: `send` tries again (with every entry not
        // journaled yet), and fails the flush (503 to the waiting requests) while the store fails.
      }
    },
    sink: {
      async sendPartials(message) {
        const entry = pending.get(message.value);
        if (entry === undefined) {
          await o.sink.sendPartialRecords(o.sink.routePartials(message));
          return;
        }
        if (!entry.journaled) writeUnjournaled();
        await o.sink.sendPartialRecords(entry.records);
        o.afterKafkaAck?.();
        const through = acknowledgedThrough(entry);
        pending.delete(message.value);
        try {
          journal.acked(entry.sequence, through);
        } catch {
          // Logged by the store. The entry stays: should this process die, its re-send is dropped
          // by the aggregator; meanwhile the flusher's `acknowledged()` commits the marks.
        }
      },
      // Rejected records carry no marks: nothing to journal.
      sendRejected: (records) => o.sink.sendRejected(records),
    },
    recover() {
      recovering ??= recoverNow().finally(() => {
        recovering = undefined;
      });
      return recovering;
    },
  };
}

/**
 * The records of a sink that takes whole envelopes (in-memory sinks of tests and benchmarks):
 * one record per envelope, keyed by source, sent back to that sink as the envelope.
 */
export function wholeEnvelopeRecords(sink: PipelineSink): PipelineSink & PartialRecords {
  return {
    sendPartials: (envelope) => sink.sendPartials(envelope),
    sendRejected: (records) => sink.sendRejected(records),
    routePartials: (m) => [{ key: m.key, value: Buffer.from(m.value.buffer, m.value.byteOffset, m.value.byteLength) }],
    async sendPartialRecords(records) {
      for (const r of records) await sink.sendPartials({ key: r.key, value: r.value });
    },
  };
}
