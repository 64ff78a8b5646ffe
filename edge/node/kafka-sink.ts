import type { Kafka, Producer } from 'kafkajs';
import type { PartialSink, RejectedRecord, RejectedSink } from '../ports.ts';

export interface KafkaSinks {
  partialSink: PartialSink;
  rejectedSink: RejectedSink;
  connect(): Promise<void>;
  disconnect(): Promise<void>;
}

/**
 * The edge's sinks on Kafka: encoded envelopes to `topics.partials` keyed by sourceId (one
 * source stays in one partition, so its sequence arrives in order) and redacted rejected
 * events as JSON to `topics.rejected` keyed by site.
 *
 * The producer is idempotent with one request in flight and `acks: -1`: a send resolves only
 * once all in-sync replicas have the batch, which is what the edge's group commit promises
 * clients, and broker-side retries cannot duplicate or reorder it.
 *
 * @example
 * ```ts
 * const sinks = createKafkaSinks({ kafka, topics: { partials: 'partials', rejected: 'rejected' } });
 * await sinks.connect();
 * ```
 */
export function createKafkaSinks(o: { kafka: Kafka; topics: { partials: string; rejected: string } }): KafkaSinks {
  const producer: Producer = o.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  return {
    partialSink: {
      async send({ key, value }) {
        await producer.send({
          topic: o.topics.partials,
          acks: -1,
          messages: [{ key, value: Buffer.from(value.buffer, value.byteOffset, value.byteLength) }],
        });
      },
    },
    rejectedSink: {
      async send(records: RejectedRecord[]) {
        if (records.length === 0) return;
        await producer.send({
          topic: o.topics.rejected,
          acks: -1,
          messages: records.map((r) => ({ key: r.site, value: JSON.stringify(r) })),
        });
      },
    },
    connect: () => producer.connect(),
    disconnect: () => producer.disconnect(),
  };
}
