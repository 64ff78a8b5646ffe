import { decodeEnvelope } from '../../shared/algebra/index.ts';
import type { PipelineSink } from '../../shared/ports/pipeline-sink.ts';

export interface SinkStats {
  envelopes: number;
  envelopeBytes: number;
  rows: number;
  /** Events counted in the rows (sum of partial counts). */
  events: number;
  rejected: number;
}

/**
 * An in-memory sink that acknowledges at once and keeps what it was sent; decoding (to count
 * rows and events) waits for `stats()`, so it costs the measured edge nothing.
 */
export function createMemorySink(): { sink: PipelineSink; stats(): SinkStats } {
  const sent: Uint8Array[] = [];
  let rejected = 0;
  return {
    sink: {
      async sendPartials({ value }) {
        sent.push(value);
      },
      async sendRejected(records) {
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
