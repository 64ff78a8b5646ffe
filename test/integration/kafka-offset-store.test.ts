import { describe, expect, it } from 'vitest';
import { createKafkaOffsetStore } from '../../core/aggregator/kafka-offset-store.ts';
import { testKafka } from './helpers/aggregator-harness.ts';
import { testKafkaBrokers, uniqueName, waitFor } from './setup/kafka-test-env.ts';

// The offset store against the real broker, and the kafkajs behaviour it guards against (issue 9):
// a consumer whose run loop is not running resolves commitOffsets without committing anything.
describe('the kafkajs offset store', () => {
  it('answers committed only for a commit the group holds, and failed for one kafkajs resolved without committing', async () => {
    const brokers = testKafkaBrokers();
    const topic = uniqueName('offsets');
    const groupId = uniqueName('offsets-group');
    const kafka = testKafka(brokers);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: Array.from({ length: 20 }, (_, i) => ({ partition: 0, value: `m${i}` })) });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 1000 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    let joined = false;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      joined = true;
    });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: async () => undefined });
    const store = createKafkaOffsetStore({ consumer, admin, groupId, topic });
    try {
      await waitFor(() => joined, 'the group join', 30_000);
      expect(await store.read(0)).toEqual({ offset: undefined, metadata: undefined });
      expect(await store.commit(0, '5', 'tributary:v2:1:first')).toEqual({ kind: 'committed' });
      expect(await store.read(0)).toEqual({ offset: '5', metadata: 'tributary:v2:1:first' });
      expect(await store.logStart(0)).toBe('0');

      // The consumer restarts (as kafkajs does after a broker outage): until it has joined the
      // group again its runner is not running...
      await consumer.stop();
      joined = false;
      const rejoined = consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: async () => undefined });
      // ...and kafkajs resolves a commit without sending it:
      await expect(consumer.commitOffsets([{ topic, partition: 0, offset: '9', metadata: 'tributary:v2:2:raw' }])).resolves.toBeUndefined();
      // The store does not take that for a commit.
      const answer = await store.commit(0, '12', 'tributary:v2:2:second');
      expect(answer.kind).toBe('failed');
      expect(answer.kind === 'failed' && answer.reason).toContain('the group holds offset 5');
      expect(await store.read(0)).toEqual({ offset: '5', metadata: 'tributary:v2:1:first' });
      await rejoined;
      await waitFor(() => joined, 'the second group join', 30_000);
      expect(await store.commit(0, '12', 'tributary:v2:3:third')).toEqual({ kind: 'committed' });
    } finally {
      await consumer.disconnect();
      await admin.disconnect();
    }
  });
});
