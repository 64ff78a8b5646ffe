/**
 * What the Worker and its Durable Object shards say to each other over RPC. Events arrive
 * validated and pseudonymized (no raw ids, IPs or free text): the shard only deduplicates,
 * stores and aggregates them.
 */
import type { AccumulatorEvent } from '../accumulator.ts';
import type { RejectedRecord } from '../ports.ts';

/** One request's events for one shard. */
export interface ShardBatch {
  /** The shard's name (`<EDGE_ID>-<index>`); its source id on the wire is `do-<name>`. */
  shard: string;
  events: AccumulatorEvent[];
  /** Redacted rejected events, forwarded to the gateway's `rejected` endpoint. */
  rejected: RejectedRecord[];
}

/** `ok` means: in Durable Object storage (the RPC answer is held until the write is durable). */
export type ShardIngestResult =
  | { ok: true; stored: number; duplicates: number }
  | { ok: false; code: 'overloaded' | 'misconfigured'; retryAfterS: number; message: string };

/** A shard's state, for `/health` and tests. */
export interface ShardStats {
  shard: string | null;
  sourceId: string | null;
  /** Events stored and not yet sealed into an envelope. */
  pendingEvents: number;
  /** Sealed envelopes waiting for the gateway's 200, and the rows in them. */
  outboxEnvelopes: number;
  outboxRows: number;
  rejectedRecords: number;
  /** Sequence the next sealed envelope gets. */
  nextSequence: number | null;
  watermarkMs: number | null;
  /** Failed gateway attempts in a row (0 = healthy). */
  failedAttempts: number;
  lastError: string | null;
  alarmAtMs: number | null;
  overloaded: boolean;
}
