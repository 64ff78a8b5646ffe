import type { CheckpointStore } from './checkpoint.ts';
import type { EncodedEmission, Emission } from './emission.ts';

// The ports of the epoch protocol (core/aggregator/epoch-committer.ts). Kafka and ClickHouse sit
// behind them (core/aggregator/kafka-offset-store.ts, core/clickhouse/*); unit tests use fakes.

/**
 * What an offset commit achieved. Only `committed` may be followed by the emission write:
 * `fenced` (the group moved on: the partition may belong to another member now) and `failed`
 * (an error, or a commit that resolved without being visible in the group) mean this epoch did
 * not happen and the partition resumes from its last confirmed checkpoint.
 */
export type CommitAnswer = { kind: 'committed' } | { kind: 'fenced'; reason: string } | { kind: 'failed'; reason: string };

/** A partition's committed position as the group coordinator has it. */
export interface CommittedPosition {
  /** Undefined when the group has never committed for the partition. */
  offset: string | undefined;
  metadata: string | undefined;
}

/** The consumer group's committed offsets for the input topic. */
export interface OffsetStore {
  /** Commits `offset` + `metadata` for `partition` and answers `committed` only once confirmed. Never throws. */
  commit(partition: number, offset: string, metadata: string): Promise<CommitAnswer>;
  /** @throws when the coordinator cannot be asked (retried by the caller). */
  read(partition: number): Promise<CommittedPosition>;
  /** The first offset still in the partition's log (its low watermark). */
  logStart(partition: number): Promise<string>;
}

/** Where the consumer fetches next; moved back when a partition's progress is abandoned. */
export interface FetchPosition {
  seek(partition: number, offset: string): void;
}

/** An input record the aggregator cannot decode, with why. */
export interface DeadLetter {
  partition: number;
  offset: string;
  value: Uint8Array;
  code: string;
  message: string;
}

/** Durable home of undecodable input; `send` resolves once the record is durable. */
export interface DeadLetterSink {
  send(record: DeadLetter): Promise<void>;
}

/** The ClickHouse side of an epoch's emission (core/clickhouse/emission-writer.ts). */
export interface EmissionWriterPort {
  encode(emission: Emission, partition: number, nowMs: number): EncodedEmission;
  writeEncoded(encoded: EncodedEmission, token: string): Promise<{ rows: number }>;
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export interface EpochPorts {
  offsets: OffsetStore;
  fetch: FetchPosition;
  checkpoints: CheckpointStore;
  writer: EmissionWriterPort;
  deadLetters: DeadLetterSink;
  clock: Clock;
  /** A fresh checkpoint id per attempt (random UUID in production). */
  newCheckpointId(): string;
}
