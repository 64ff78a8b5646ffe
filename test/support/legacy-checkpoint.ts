import { encodeEnvelope } from '../../shared/algebra/index.ts';
import type { Emission } from '../../core/aggregator/emission.ts';

/**
 * The emission as checkpoints stored it before ADR 0008 (deltas in the envelope codec, the rest
 * as JSON): how tests make the old checkpoints that `decodeLegacyEmission` must still read.
 */
export function encodeLegacyEmission(e: Emission): { deltas: Uint8Array; rest: string } {
  const deltas = encodeEnvelope({
    version: 1,
    sourceId: 'checkpoint',
    sequence: 0,
    watermarkMs: 0,
    createdAtMs: 0,
    rows: e.deltas.map((d) => ({ windowStartMs: d.windowStartMs, windowSizeMs: d.windowSizeMs, site: d.site, event: d.event, dimensions: d.dims, partial: d.partial })),
  });
  const rest = JSON.stringify({
    statuses: e.statuses.map((s) => ({ ...s, watermarkMs: s.watermarkMs ?? null, finalizedAtMs: s.finalizedAtMs ?? null })),
    late: e.late.map((l) => ({ ...l, watermarkMs: l.watermarkMs ?? null })),
    watermarkMs: e.watermarkMs ?? null,
    progressMs: e.progressMs ?? null,
  });
  return { deltas, rest };
}
