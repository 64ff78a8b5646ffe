import { MAX_WINDOW_START_MS, MIN_WINDOW_START_MS, decodeEnvelope, partialOutOfBounds, type DecodeError, type PartialEnvelope } from '../../shared/algebra/index.ts';

/** Why an input record is dead-lettered: it does not decode, or a row breaks a documented bound. */
export interface InputError {
  code: DecodeError['code'] | 'value_out_of_bounds' | 'window_out_of_range';
  message: string;
}

export type InputResult = { ok: true; value: PartialEnvelope } | { ok: false; error: InputError };

/**
 * Decodes one record of the `partials` topic and re-checks what an edge already guarantees
 * (docs/SECURITY.md "Bounded values"): every row's values within ±1e15 and its window within
 * 1970..2299. The record is refused whole: a row that breaks a bound cannot come from a
 * conforming edge, so none of the envelope is trusted; the dead-letter record keeps its bytes.
 * @example
 * const input = decodeInput(message.value);
 * if (!input.ok) await deadLetters.send({ ..., code: input.error.code, message: input.error.message });
 */
export function decodeInput(bytes: Uint8Array): InputResult {
  const decoded = decodeEnvelope(bytes);
  if (!decoded.ok) return decoded;
  const { rows, sourceId, sequence } = decoded.value;
  const where = (i: number): string => `row ${i} of source ${JSON.stringify(sourceId)} sequence ${sequence}`;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as PartialEnvelope['rows'][number];
    if (row.windowStartMs < MIN_WINDOW_START_MS || row.windowStartMs > MAX_WINDOW_START_MS) {
      return { ok: false, error: { code: 'window_out_of_range', message: `${where(i)}: window start ${row.windowStartMs} ms is outside 1970-01-01..2299-12-31 (ClickHouse DateTime64); the envelope is not from a conforming edge` } };
    }
    const why = partialOutOfBounds(row.partial);
    if (why !== undefined) {
      return { ok: false, error: { code: 'value_out_of_bounds', message: `${where(i)}: ${why}; the envelope is not from a conforming edge (edges refuse values beyond ±1e15)` } };
    }
  }
  return decoded;
}
