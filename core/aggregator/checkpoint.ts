import { decodeEnvelope, encodeEnvelope } from '../algebra/index.ts';
import { dimsKeyOf, type Emission, type LateRow, type WindowStatusRow } from './emission.ts';
import type { PartitionSnapshot } from './partition-aggregator.ts';

/** One partition's durable progress: the state after `epoch` and the emission it produced. */
export interface Checkpoint {
  groupId: string;
  topic: string;
  partition: number;
  epoch: number;
  checkpointId: string;
  /** First offset not yet reflected in `state`. */
  nextOffset: string;
  state: PartitionSnapshot;
  emission: Emission;
}

/** Where checkpoints live; the Kafka offset commit decides which one is current. */
export interface CheckpointStore {
  save(checkpoint: Checkpoint): Promise<void>;
  load(key: { groupId: string; topic: string; partition: number; epoch: number; checkpointId: string }): Promise<Checkpoint | undefined>;
}

const METADATA_PREFIX = 'tributary:v1:';

/** The offset-commit metadata that makes a checkpoint current: small, well under Kafka's 4 KiB limit. */
export function checkpointMetadata(epoch: number, checkpointId: string): string {
  return `${METADATA_PREFIX}${epoch}:${checkpointId}`;
}

export function parseCheckpointMetadata(metadata: string | null | undefined): { epoch: number; checkpointId: string } | undefined {
  if (!metadata || !metadata.startsWith(METADATA_PREFIX)) return undefined;
  const [epochText, checkpointId] = metadata.slice(METADATA_PREFIX.length).split(':');
  const epoch = Number(epochText);
  if (!Number.isSafeInteger(epoch) || epoch < 1 || !checkpointId) return undefined;
  return { epoch, checkpointId };
}

/** Deltas travel in the same compact binary codec as edge envelopes; statuses and late rows as JSON. */
export function encodeEmission(e: Emission): { deltas: Uint8Array; rest: string } {
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

type Nullable<T, K extends keyof T> = Omit<T, K> & { [P in K]: Exclude<T[P], undefined> | null };

export function decodeEmission(deltas: Uint8Array, rest: string): Emission {
  const envelope = decodeEnvelope(deltas);
  if (!envelope.ok) throw new Error(`checkpoint emission is corrupt: ${envelope.error.message}`);
  const parsed = JSON.parse(rest) as {
    statuses: Array<Nullable<WindowStatusRow, 'watermarkMs' | 'finalizedAtMs'>>;
    late: Array<Nullable<LateRow, 'watermarkMs'>>;
    watermarkMs: number | null;
    /** Absent in checkpoints written before partition progress existed. */
    progressMs?: number | null;
  };
  return {
    deltas: envelope.value.rows.map((r) => ({
      site: r.site,
      event: r.event,
      windowStartMs: r.windowStartMs,
      windowSizeMs: r.windowSizeMs,
      dims: r.dimensions,
      dimsKey: dimsKeyOf(r.dimensions),
      partial: r.partial,
    })),
    statuses: parsed.statuses.map((s) => ({ ...s, watermarkMs: s.watermarkMs ?? undefined, finalizedAtMs: s.finalizedAtMs ?? undefined })),
    late: parsed.late.map((l) => ({ ...l, watermarkMs: l.watermarkMs ?? undefined })),
    watermarkMs: parsed.watermarkMs ?? undefined,
    ...(parsed.progressMs != null ? { progressMs: parsed.progressMs } : {}),
  };
}
