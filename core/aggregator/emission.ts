import type { PartialAggregate } from '../../shared/algebra/index.ts';

/** An additive change to one (window, site, event, dimensions) cell. */
export interface DeltaRow {
  site: string;
  event: string;
  windowStartMs: number;
  windowSizeMs: number;
  /** Sorted (name, value) pairs, shared by every delta of the same tuple (and cached by the writer): never mutate. */
  dims: Array<[string, string]>;
  dimsKey: string;
  partial: PartialAggregate;
}

export type WindowStatus = 'provisional' | 'final' | 'corrected';

export interface WindowStatusRow {
  windowStartMs: number;
  windowSizeMs: number;
  status: WindowStatus;
  watermarkMs: number | undefined;
  finalizedAtMs: number | undefined;
}

export type LateReason = 'beyond_correction_horizon';

/** A partial row that arrived too late to correct its window; recorded, never dropped silently. */
export interface LateRow {
  site: string;
  event: string;
  windowStartMs: number;
  dimsKey: string;
  events: number;
  reason: LateReason;
  sourceId: string;
  sequence: number;
  watermarkMs: number | undefined;
  receivedAtMs: number;
}

/** Everything one partition writes to ClickHouse for one epoch. */
export interface Emission {
  deltas: DeltaRow[];
  statuses: WindowStatusRow[];
  late: LateRow[];
  watermarkMs: number | undefined;
  /**
   * The partition's watermark to record in `partition_progress`, set when it entered a new
   * minute since the last record: how hour and day buckets become final while the partition
   * writes no window rows (docs/QUERIES.md "Provisional or final").
   */
  progressMs?: number;
}

/**
 * An emission as the store's inserts, in write order: one part per table with rows, its bytes
 * opaque to the aggregator. A checkpoint keeps it, so a re-write after a crash sends exactly the
 * same rows under the same deduplication token (ADR 0003, ADR 0008).
 */
export interface EncodedEmission {
  parts: Array<{ table: string; rows: number; bytes: Uint8Array }>;
}

export function isEmptyEmission(e: Emission): boolean {
  return e.deltas.length === 0 && e.statuses.length === 0 && e.late.length === 0 && e.progressMs === undefined;
}

/** Canonical form of sorted dimension pairs; the unit separator cannot appear in normalized values. */
export function dimsKeyOf(dims: ReadonlyArray<readonly [string, string]>): string {
  return dims.map(([k, v]) => `${k}=${v}`).join('\u001f');
}
