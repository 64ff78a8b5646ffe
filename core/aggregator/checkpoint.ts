import { ByteReader, ByteWriter, ReadFailure } from '../algebra/bytes.ts';
import { decodeEnvelope } from '../algebra/index.ts';
import { dimsKeyOf, type EncodedEmission, type Emission, type LateRow, type WindowStatusRow } from './emission.ts';
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
  /** The epoch's inserts, byte for byte, re-sent after a restore. */
  emission: EncodedEmission;
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

/** A checkpoint's inserts as one blob: part count, then per part table, row count, byte length, bytes. */
export function encodeInserts(e: EncodedEmission): Uint8Array {
  const w = new ByteWriter(64 + e.parts.reduce((n, p) => n + p.bytes.length + 32, 0));
  w.uvarint(e.parts.length);
  for (const part of e.parts) {
    w.string(part.table);
    w.uvarint(part.rows);
    w.uvarint(part.bytes.length);
    w.bytes(part.bytes);
  }
  return w.finish();
}

/** @throws Error naming the checkpoint blob as corrupt when it does not parse. */
export function decodeInserts(bytes: Uint8Array): EncodedEmission {
  try {
    const r = new ByteReader(bytes);
    const count = r.count('parts');
    const parts: EncodedEmission['parts'] = [];
    for (let i = 0; i < count; i++) {
      const table = r.string('table');
      const rows = r.uvarint('rows');
      parts.push({ table, rows, bytes: r.bytes(r.uvarint('length'), 'part bytes').slice() });
    }
    if (r.remaining !== 0) r.fail('malformed', `${r.remaining} bytes after the last part`);
    return { parts };
  } catch (err) {
    if (err instanceof ReadFailure) throw new Error(`checkpoint inserts are corrupt at byte ${err.offset}: ${err.message}`);
    throw err;
  }
}

type Nullable<T, K extends keyof T> = Omit<T, K> & { [P in K]: Exclude<T[P], undefined> | null };

/**
 * Checkpoints written before ADR 0008 kept the emission itself (deltas in the envelope codec,
 * base64, the rest as JSON); it is read back to be encoded again.
 */
export function decodeLegacyEmission(deltas: Uint8Array, rest: string): Emission {
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
