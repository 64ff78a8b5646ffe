/**
 * The edge's outbound ports. Runtime entries implement them (Kafka on Node, Durable Object +
 * gateway on Workers); unit tests use in-memory fakes.
 */
import type { RejectedRecord } from '../schemas/rejected-record.ts';

export type { RejectedRecord };

/** Receives encoded `PartialEnvelope`s. Resolving means durable (e.g. Kafka acks=all). */
export interface PartialSink {
  send(msg: { key: string; value: Uint8Array }): Promise<void>;
}

/**
 * Receives rejected events (topic `rejected`, docs/CONTRACTS.md). `event` is a redacted copy:
 * no raw user id, trait, IP, URL query or free-text value.
 */
export interface RejectedSink {
  send(records: RejectedRecord[]): Promise<void>;
}

/** Structured operational events (`event` in snake_case), for the entry's logger. */
export type EdgeLog = (fields: { event: string; [key: string]: unknown }) => void;
