import { ByteReader, ByteWriter, ReadFailure } from '../../shared/algebra/bytes.ts';
import { decodeEnvelope } from '../../shared/algebra/index.ts';
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
  /**
   * The highest epoch and next offset among all checkpoints of the partition, undefined when it
   * has none: whether the partition was ever consumed against this ClickHouse (ADR 0003, "State
   * mismatch").
   */
  summary(key: { groupId: string; topic: string; partition: number }): Promise<{ maxEpoch: number; maxNextOffset: string } | undefined>;
}

/**
 * Which checkpoint a committed offset names. `v1` pointers were committed before the epoch
 * protocol confirmed its commits: their emission was written under a token derived from the epoch
 * number, so a restore re-writes it under that same token. `v2` pointers use the checkpoint id.
 */
export interface CheckpointPointer {
  version: 1 | 2;
  epoch: number;
  checkpointId: string;
}

export type ParsedMetadata =
  | { kind: 'none' }
  | { kind: 'pointer'; pointer: CheckpointPointer }
  /** Ours, but from a version this code cannot read (a newer release, or damaged). */
  | { kind: 'unsupported'; metadata: string };

const METADATA_PREFIX = 'tributary:';

/** The offset-commit metadata that makes a checkpoint current: small, well under Kafka's 4 KiB limit. */
export function checkpointMetadata(epoch: number, checkpointId: string): string {
  return `${METADATA_PREFIX}v2:${epoch}:${checkpointId}`;
}

export function parseCheckpointMetadata(metadata: string | null | undefined): ParsedMetadata {
  if (!metadata || !metadata.startsWith(METADATA_PREFIX)) return { kind: 'none' };
  const [version, epochText, checkpointId, ...rest] = metadata.slice(METADATA_PREFIX.length).split(':');
  const epoch = Number(epochText);
  if ((version !== 'v1' && version !== 'v2') || !Number.isSafeInteger(epoch) || epoch < 1 || !checkpointId || rest.length > 0) return { kind: 'unsupported', metadata };
  return { kind: 'pointer', pointer: { version: version === 'v1' ? 1 : 2, epoch, checkpointId } };
}

/**
 * The insert_deduplication_token of a checkpoint's emission (the writer appends `:<table>`).
 * It names the checkpoint, whose id is random per attempt, so two different emissions never share
 * a token — also when a restore makes the same epoch number happen twice. An epoch number alone
 * did not guarantee that (ADR 0003, "What was wrong"); v1 pointers keep it because their
 * emission may already have landed under it.
 */
export function emissionToken(scope: { groupId: string; topic: string; partition: number }, pointer: CheckpointPointer): string {
  const base = `${scope.groupId}:${scope.topic}:${scope.partition}`;
  return pointer.version === 1 ? `${base}:e${pointer.epoch}` : `${base}:${pointer.checkpointId}`;
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
