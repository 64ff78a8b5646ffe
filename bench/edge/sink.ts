import { decodeEnvelope } from '../../shared/algebra/index.ts';
import type { PartialSink, RejectedSink } from '../../edge/ports.ts';

export interface SinkStats {
  envelopes: number;
  envelopeBytes: number;
  rows: number;
  /** Events counted in the rows (sum of partial counts). */
  events: number;
  rejected: number;
}

/**
 * In-memory sinks that acknowledge at once and keep what they were sent; decoding (to count
 * rows and events) waits for `stats()`, so it costs the measured edge nothing.
 */
export function createMemorySinks(): { partialSink: PartialSink; rejectedSink: RejectedSink; stats(): SinkStats } {
  const sent: Uint8Array[] = [];
  let rejected = 0;
  return {
    partialSink: {
      async send({ value }) {
        sent.push(value);
      },
    },
    rejectedSink: {
      async send(records) {
        rejected += records.length;
      },
    },
    stats() {
      const out: SinkStats = { envelopes: sent.length, envelopeBytes: 0, rows: 0, events: 0, rejected };
      for (const bytes of sent) {
        out.envelopeBytes += bytes.byteLength;
        const d = decodeEnvelope(bytes);
        if (!d.ok) throw new Error(`undecodable envelope: ${d.error.message}`);
        out.rows += d.value.rows.length;
        for (const r of d.value.rows) out.events += r.partial.count;
      }
      return out;
    },
  };
}
