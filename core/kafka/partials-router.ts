import type { Admin, Kafka } from 'kafkajs';
import { decodeEnvelope, encodeEnvelope, splitEnvelopeByCell } from '../../shared/algebra/index.ts';

/** How edges send envelopes: whole, keyed by source, or split by cell (ADR 0008). */
export type PartialsRouting = 'source' | 'cell';

/** One Kafka message of topic `partials`; `partition` unset means "by key". */
export interface PartialsMessage {
  key: string;
  value: Buffer;
  partition?: number;
}

/** Turns an encoded envelope into the messages that carry it to the aggregators. */
export interface PartialsRouter {
  route(message: { key: string; value: Uint8Array }): PartialsMessage[];
  /** Learns the topic's partition count; call before the first send and it refreshes itself. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

const REFRESH_MS = 60_000;

const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/**
 * Routes envelopes by cell (ADR 0008): each is split into one sub-envelope per partition of
 * `topic`, sent to that partition, so each cell is merged by one aggregator and ClickHouse gets
 * one row per cell and epoch instead of one per edge. Until the partition count is known (topic
 * missing, broker unreachable at start) an envelope goes whole, keyed by its source, as before:
 * correct, only merged less.
 *
 * @example
 * const router = createPartialsRouter(kafka, 'partials');
 * await router.start();
 * await producer.send({ topic: 'partials', acks: -1, messages: router.route({ key: sourceId, value: bytes }) });
 */
export function createPartialsRouter(kafka: Kafka, topic: string, routing: PartialsRouting = 'cell'): PartialsRouter {
  if (routing === 'source') {
    return { route: ({ key, value }) => [{ key, value: asBuffer(value) }], start: async () => undefined, stop: async () => undefined };
  }
  let partitions: number | undefined;
  let admin: Admin | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;

  async function refresh(): Promise<void> {
    try {
      admin ??= kafka.admin();
      await admin.connect();
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      const count = topics[0]?.partitions.length ?? 0;
      if (count > 0) partitions = count;
    } catch {
      // Keep the last known count (or route by source): the next refresh tries again.
    }
  }

  return {
    route({ key, value }) {
      if (partitions === undefined) return [{ key, value: asBuffer(value) }];
      const decoded = decodeEnvelope(value);
      // Our own encoder made it; if it ever cannot be decoded, the aggregator dead-letters it whole.
      if (!decoded.ok) return [{ key, value: asBuffer(value) }];
      return splitEnvelopeByCell(decoded.value, partitions).map((part, partition) => ({
        key: part.sourceId,
        value: asBuffer(encodeEnvelope(part)),
        partition,
      }));
    },
    async start() {
      await refresh();
      timer ??= setInterval(() => void refresh(), REFRESH_MS);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await admin?.disconnect();
    },
  };
}
