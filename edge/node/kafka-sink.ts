import type { Kafka } from 'kafkajs';
import type { KafkaLogSink } from '../../core/kafka/client.ts';
import type { PartialsMessage, PartialsRouting } from '../../core/kafka/partials-router.ts';
import { createPipelineProducer } from '../../core/kafka/pipeline-producer.ts';
import type { PartialSink, RejectedRecord, RejectedSink } from '../ports.ts';

/** Envelopes as Kafka records: routed once, journaled, sent unchanged (edge/node/flush-journal.ts). */
export interface PartialRecords {
  route(message: { key: string; value: Uint8Array }): PartialsMessage[];
  send(records: PartialsMessage[]): Promise<void>;
}

export interface KafkaSinks {
  partialSink: PartialSink;
  records: PartialRecords;
  rejectedSink: RejectedSink;
  connect(): Promise<void>;
  disconnect(): Promise<void>;
}

/**
 * The edge's sinks on Kafka, through the pipeline producer (core/kafka/pipeline-producer.ts):
 * encoded envelopes to `topics.partials` (split by cell with `partialsRouting: 'cell'`, the
 * default, ADR 0008) and redacted rejected events as JSON to `topics.rejected` keyed by site.
 * A send resolves only once all in-sync replicas have it, which is what the edge's group commit
 * promises clients.
 *
 * @example
 * ```ts
 * const sinks = createKafkaSinks({ kafka, topics: { partials: 'partials', rejected: 'rejected' } });
 * await sinks.connect();
 * ```
 */
export function createKafkaSinks(o: { kafka: Kafka; topics: { partials: string; rejected: string; partialsRouting?: PartialsRouting }; log?: KafkaLogSink }): KafkaSinks {
  const producer = createPipelineProducer(o);
  return {
    partialSink: { send: (message) => producer.sendPartials(message) },
    records: { route: (message) => producer.routePartials(message), send: (records) => producer.sendPartialRecords(records) },
    rejectedSink: { send: (records: RejectedRecord[]) => producer.sendRejected(records.map((r) => ({ key: r.site, value: JSON.stringify(r) }))) },
    connect: () => producer.connect(),
    disconnect: () => producer.disconnect(),
  };
}
