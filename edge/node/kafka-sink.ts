import type { Kafka, Producer } from 'kafkajs';
import { createPartialsRouter, type PartialsRouting } from '../../core/kafka/partials-router.ts';
import type { PartialSink, RejectedRecord, RejectedSink } from '../ports.ts';

export interface KafkaSinks {
  partialSink: PartialSink;
  rejectedSink: RejectedSink;
  connect(): Promise<void>;
  disconnect(): Promise<void>;
}

/**
 * The edge's sinks on Kafka: encoded envelopes to `topics.partials` keyed by sourceId (one
 * source stays in one partition, so its sequence arrives in order) or, with
 * `partialsRouting: 'cell'`, split by cell into one sub-envelope per partition (ADR 0008), and
 * redacted rejected events as JSON to `topics.rejected` keyed by site.
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
export function createKafkaSinks(o: { kafka: Kafka; topics: { partials: string; rejected: string; partialsRouting?: PartialsRouting } }): KafkaSinks {
  const producer: Producer = o.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  const router = createPartialsRouter(o.kafka, o.topics.partials, o.topics.partialsRouting ?? 'cell');
  return {
    partialSink: {
      async send(message) {
        // One request for all parts: the flusher's retry resends all of them, duplicates are dropped by sequence.
        await producer.send({ topic: o.topics.partials, acks: -1, messages: router.route(message) });
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
