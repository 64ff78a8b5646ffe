import { Partitioners, type Kafka, type Producer, type RetryOptions } from 'kafkajs';
import type { EnvelopeMessage, PipelineSink } from '../../shared/ports/pipeline-sink.ts';
import type { KafkaLogSink } from './client.ts';
import { createPartialsRouter, type PartialsMessage, type PartialsRouting } from './partials-router.ts';

/**
 * What only a Kafka sink can do: show the exact records an envelope becomes. The Node edge's
 * flush journal (edge/node/flush-journal.ts) journals these records before they are sent, so a
 * replay after a crash lands on the same partitions under the same sub-source ids (ADR 0010
 * addendum).
 */
export interface PartialRecords {
  /** The Kafka records `sendPartials` would send for an envelope now (split by cell, with their partitions). */
  routePartials(envelope: EnvelopeMessage): PartialsMessage[];
  /** Sends records made by `routePartials` (now or by another process) unchanged; resolves on acks = all, as {@link PipelineSink}. */
  sendPartialRecords(records: PartialsMessage[]): Promise<void>;
}

/** The {@link PipelineSink} of the Node edge and the gateway on Kafka, through one producer. */
export interface KafkaPipelineSink extends PipelineSink, PartialRecords {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
}

/**
 * Retries of one send inside kafkajs. Bounded, so a client waiting for its group commit gets
 * 503 + Retry-After in about a second instead of waiting through kafkajs' unlimited retries of
 * an idempotent producer. kafkajs warns that this "may invalidate EoS guarantees": its
 * producer-level deduplication no longer covers a send we repeat ourselves, but every repeat
 * carries the envelope's own (source, sequence), which the aggregator drops (ADR 0003).
 */
export const SEND_RETRY: RetryOptions = { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 };

/**
 * The {@link PipelineSink} of the Node edge and the gateway, on one kafkajs producer: idempotent,
 * one request in flight, `acks: -1`, so a send resolves only when all in-sync replicas have the
 * messages and broker-side retries never duplicate or reorder them. Envelopes are split by cell into one sub-envelope per
 * partition (`partialsRouting: 'cell'`, the default, ADR 0008), all parts in one request, or
 * sent whole keyed by sourceId (`'source'`); a source or sub-source stays in one partition, in
 * sequence order. A retry resends every part; the aggregator drops repeats by sequence.
 *
 * @example
 * ```ts
 * const sink = createPipelineProducer({ kafka, topics: { partials: 'partials', rejected: 'rejected' } });
 * await sink.connect();
 * await sink.sendPartials({ key: sourceId, value: encodeEnvelope(envelope) }); // acks = all
 * ```
 */
export function createPipelineProducer(o: { kafka: Kafka; topics: { partials: string; rejected: string; partialsRouting?: PartialsRouting }; log?: KafkaLogSink }): KafkaPipelineSink {
  const producer: Producer = o.kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    retry: SEND_RETRY,
    // kafkajs' v2 default (murmur2, as Java clients); named so no start prints its migration notice.
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  o.log?.({
    level: 'info',
    fields: {
      event: 'kafka_producer_retries_bounded',
      retries: SEND_RETRY.retries,
      reason: 'a send that still fails is answered 503 and its envelope re-sent with the same sequence; the aggregator drops (source, sequence) repeats (docs/OPERATIONS.md)',
    },
  });
  const router = createPartialsRouter(o.kafka, o.topics.partials, o.topics.partialsRouting ?? 'cell');
  return {
    async sendPartials(envelope) {
      await producer.send({ topic: o.topics.partials, acks: -1, messages: router.route(envelope) });
    },
    routePartials: (envelope) => router.route(envelope),
    async sendPartialRecords(records) {
      if (records.length > 0) await producer.send({ topic: o.topics.partials, acks: -1, messages: records });
    },
    async sendRejected(records) {
      // JSON keyed by site (docs/CONTRACTS.md, topic `rejected`).
      if (records.length > 0) await producer.send({ topic: o.topics.rejected, acks: -1, messages: records.map((r) => ({ key: r.site, value: JSON.stringify(r) })) });
    },
    connect: async () => {
      await producer.connect();
      await router.start();
    },
    disconnect: async () => {
      await router.stop();
      await producer.disconnect();
    },
  };
}
