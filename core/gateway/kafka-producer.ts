import type { Kafka, Producer } from 'kafkajs';
import { createPartialsRouter, type PartialsRouting } from '../kafka/partials-router.ts';
import type { GatewayProducer } from './ports.ts';

export interface KafkaGatewayProducer extends GatewayProducer {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
}

/**
 * The gateway's producer: idempotent, one request in flight, `acks: -1`, so a send resolves only
 * when all in-sync replicas have the message and broker-side retries never duplicate or reorder
 * it. Envelopes are keyed by sourceId (one source stays in one partition, in sequence order) or,
 * with `partialsRouting: 'cell'`, split by cell into one sub-envelope per partition (ADR 0008);
 * rejected records are keyed by site. Pass a Kafka client with short retries: a request waiting here is an
 * edge waiting for its 200, and a 503 + Retry-After lets it back off instead.
 *
 * @example
 * ```ts
 * const producer = createKafkaGatewayProducer({ kafka, topics: { partials: 'partials', rejected: 'rejected' } });
 * await producer.connect();
 * ```
 */
export function createKafkaGatewayProducer(o: { kafka: Kafka; topics: { partials: string; rejected: string; partialsRouting?: PartialsRouting } }): KafkaGatewayProducer {
  const producer: Producer = o.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  const router = createPartialsRouter(o.kafka, o.topics.partials, o.topics.partialsRouting ?? 'cell');
  return {
    async sendPartials(message) {
      await producer.send({ topic: o.topics.partials, acks: -1, messages: router.route(message) });
    },
    async sendRejected(messages) {
      if (messages.length > 0) await producer.send({ topic: o.topics.rejected, acks: -1, messages });
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
