/**
 * "Send to the pipeline": the one port through which encoded partial envelopes reach topic
 * `partials` and redacted rejected events reach topic `rejected` (ADR 0019).
 *
 * Implementations:
 * - the kafkajs producer (core/kafka/pipeline-producer.ts): the Node edge and the gateway;
 * - the gateway client (edge/gateway-client.ts): the Deno edge's flusher and the Workers Durable
 *   Object shard's alarm;
 * - wrappers that add to a sink and keep its contract: the Node edge's flush journal and health
 *   tracker (edge/node/), in-memory sinks of tests and benchmarks.
 */
import type { RejectedRecord } from '../../schemas/rejected-record.ts';

/** One encoded `PartialEnvelope` and its key, the envelope's sourceId. */
export interface EnvelopeMessage {
  key: string;
  value: Uint8Array;
}

/**
 * The contract every implementation keeps, and every caller relies on:
 *
 * - **Resolves only once durable**: Kafka acknowledged the send with acks = all (directly, or
 *   the gateway answered 200, which it does only after that acknowledgement). A caller may
 *   answer its clients, delete its copy or record its marks committed only then.
 * - **Rejects when the send is not known to be durable** (it may have been written). The caller
 *   keeps what it sent and sends it again unchanged: an envelope keeps its (sourceId, sequence),
 *   which the gateway and the aggregator deduplicate (ADR 0003), so a repeat is never counted
 *   twice. The error is an `Error` whose message says why (no secret in it); one with
 *   `retriable: false` (kafkajs marks its errors so) says that sending again at once cannot
 *   help: see {@link mayRetryNow}.
 * - Envelopes go one per call, in the caller's sequence order: each is acknowledged on its own
 *   (the gateway takes one envelope per request; the Node edge records each acknowledgement in
 *   its flush journal). Rejected records go as a batch; an empty batch sends nothing.
 *
 * @example
 * ```ts
 * try {
 *   await sink.sendPartials({ key: sourceId, value: encodeEnvelope(envelope) });
 *   // durable: answer the waiting requests
 * } catch (e) {
 *   // keep the same bytes; retry (mayRetryNow(e)) or answer 503 + Retry-After
 * }
 * ```
 */
export interface PipelineSink {
  /** Resolves once the envelope is durable on topic `partials` (key = sourceId). */
  sendPartials(envelope: EnvelopeMessage): Promise<void>;
  /** Resolves once every record is durable on topic `rejected` (JSON, key = site). */
  sendRejected(records: readonly RejectedRecord[]): Promise<void>;
}

/** False when a failed send says that repeating it at once cannot succeed (`retriable: false`). */
export function mayRetryNow(error: unknown): boolean {
  return (error as { retriable?: unknown } | null)?.retriable !== false;
}
