/** What the gateway needs of Kafka; the kafkajs adapter is core/kafka/pipeline-producer.ts, tests pass fakes. */
export interface GatewayProducer {
  /** Resolves once Kafka acknowledged (acks = all) the envelope on topic `partials`, key = sourceId. */
  sendPartials(message: { key: string; value: Uint8Array }): Promise<void>;
  /** Resolves once Kafka acknowledged the JSON records on topic `rejected`, key = site. */
  sendRejected(messages: Array<{ key: string; value: string }>): Promise<void>;
}
