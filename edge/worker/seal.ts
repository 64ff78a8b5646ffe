import { encodeEnvelope, type PartialRow } from '../../shared/algebra/index.ts';

/** One sealed envelope: its bytes are what the gateway gets, on every attempt. */
export interface SealedEnvelope {
  sequence: number;
  bytes: Uint8Array;
  rows: number;
}

/**
 * Encodes drained rows into envelopes with consecutive sequences from `firstSequence`: at most
 * `flushMaxRows` rows each, halved further while over `maxEnvelopeBytes` (Kafka's message
 * limit). No rows gives one empty heartbeat envelope. Only the last envelope carries
 * `watermarkMs`; the ones before it keep `previousWatermarkMs`, since their rows were stored
 * before the new watermark was taken (the same rule as the Node flusher).
 */
export function sealEnvelopes(o: {
  rows: PartialRow[];
  sourceId: string;
  firstSequence: number;
  previousWatermarkMs: number;
  watermarkMs: number;
  createdAtMs: number;
  flushMaxRows: number;
  maxEnvelopeBytes: number;
}): SealedEnvelope[] {
  const chunks: PartialRow[][] = [];
  for (let i = 0; i < o.rows.length; i += o.flushMaxRows) chunks.push(o.rows.slice(i, i + o.flushMaxRows));
  if (chunks.length === 0) chunks.push([]);
  let sequence = o.firstSequence;
  const out: SealedEnvelope[] = [];
  const encode = (rows: PartialRow[], watermarkMs: number): void => {
    const bytes = encodeEnvelope({ version: 1, sourceId: o.sourceId, sequence, watermarkMs, createdAtMs: o.createdAtMs, rows });
    if (bytes.byteLength > o.maxEnvelopeBytes && rows.length > 1) {
      const mid = Math.ceil(rows.length / 2);
      encode(rows.slice(0, mid), watermarkMs);
      encode(rows.slice(mid), watermarkMs);
      return;
    }
    out.push({ sequence, bytes, rows: rows.length });
    sequence++;
  };
  chunks.forEach((chunk, i) => encode(chunk, i === chunks.length - 1 ? o.watermarkMs : o.previousWatermarkMs));
  return out;
}
