import { Kafka, logLevel } from 'kafkajs';
import { decodeEnvelope, type PartialEnvelope } from '../../../shared/algebra/index.ts';
import { parseEdgeConfig } from '../../../edge/config.ts';
import { startNodeEdge, type RunningNodeEdge } from '../../../edge/node/server.ts';
import { testKafkaBrokers, uniqueName } from './kafka-test-env.ts';
import { tempDedupDir } from './dedup-dir.ts';

/** A Node edge on the test broker, and everything it wrote to Kafka as it arrives. */
export interface EdgeKafkaRig {
  edge: RunningNodeEdge;
  /** Decoded envelopes from the partials topic, in arrival order. */
  envelopes: PartialEnvelope[];
  /** Raw records from the rejected topic. */
  rejected: string[];
  close(): Promise<void>;
}

/**
 * Fresh partials and rejected topics, a Node edge writing to them (flushing every 100 ms,
 * dimension `path`) and a consumer collecting both: the rig of the tests that point real
 * clients (the browser SDK, @segment/analytics-node) at the edge.
 */
export async function startEdgeKafkaRig(o: { name: string; writeKeys: string; salt: string }): Promise<EdgeKafkaRig> {
  const kafka = new Kafka({ clientId: uniqueName(o.name), brokers: testKafkaBrokers(), logLevel: logLevel.WARN });
  const topics = { partials: uniqueName(`${o.name}-partials`), rejected: uniqueName(`${o.name}-rejected`) };
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [topics.partials, topics.rejected].map((topic) => ({ topic, numPartitions: 1 })), waitForLeaders: true });
  await admin.disconnect();

  const config = parseEdgeConfig({ TRIBUTARY_WRITE_KEYS: o.writeKeys, PSEUDONYM_SALT: o.salt, FLUSH_INTERVAL_MS: '100', HEARTBEAT_MS: '200', DIMENSIONS: 'path', DEDUP_DIR: tempDedupDir() });
  if (!config.ok) throw new Error(config.errors.join('\n'));
  const edge = await startNodeEdge({ config: config.config, brokers: testKafkaBrokers(), port: 0, hostname: '127.0.0.1', topics, log: () => undefined });

  const envelopes: PartialEnvelope[] = [];
  const rejected: string[] = [];
  const consumer = kafka.consumer({ groupId: uniqueName(o.name), maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topics.partials, topics.rejected], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ topic, message }) => {
      if (topic === topics.rejected) {
        rejected.push(message.value?.toString() ?? '');
        return;
      }
      const decoded = decodeEnvelope(new Uint8Array(message.value ?? Buffer.alloc(0)));
      if (!decoded.ok) throw new Error(`undecodable envelope: ${decoded.error.message}`);
      envelopes.push(decoded.value);
    },
  });
  return {
    edge,
    envelopes,
    rejected,
    async close() {
      await consumer.disconnect();
      await edge.close();
    },
  };
}
