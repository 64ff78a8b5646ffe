import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConfiguredAggregator } from '../../core/aggregator/from-config.ts';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { createKafka } from '../../core/kafka/client.ts';
import { ensurePipelineTopics } from '../../core/kafka/topics.ts';
import { silentLogger } from '../../core/log.ts';
import { countEvents, envelopeBytes, openTestClickHouse, testCoreConfig, testKafka, type RunningAggregator } from './helpers/aggregator-harness.ts';
import { testKafkaBrokers, waitFor } from './setup/kafka-test-env.ts';

// Kafka and ClickHouse disagreeing about a group's progress is fatal, never a silent black hole
// (issue 9, point 4): the aggregator stops, says what happened and what to run, and commits
// nothing more. A "fresh ClickHouse" is the same engine with its checkpoints removed (chdb binds
// one data directory per process).
let ch: ClickHouse;
beforeAll(async () => {
  ch = await openTestClickHouse('trib-mismatch');
});
afterAll(async () => {
  await ch?.close();
});

const T = Date.UTC(2026, 0, 1, 9);

/** Two epochs of partition 0 counted and committed: the second proves a confirmed first commit. */
async function aggregateSomething(brokers: string[], config: ReturnType<typeof testCoreConfig>, site: string): Promise<void> {
  const producer = testKafka(brokers).producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const send = async (from: number, to: number): Promise<void> => {
    for (let seq = from; seq <= to; seq++) {
      await producer.send({ topic: config.topics.partials, acks: -1, messages: [{ partition: 0, key: 'e', value: envelopeBytes({ sourceId: 'e', sequence: seq, watermarkMs: T + seq * 1000, windowStartMs: T, site, events: 5 }) }] });
    }
  };
  const first = await startConfiguredAggregator(createKafka(brokers, 'mismatch-1', silentLogger()), ch, config, silentLogger());
  try {
    await send(1, 3);
    await waitFor(async () => (await countEvents(ch, site)) === 15, 'the first epoch counted', 60_000);
    await send(4, 6);
    await waitFor(async () => (await countEvents(ch, site)) === 30, 'the second epoch counted', 60_000);
    expect(first.partitions().find((p) => p.partition === 0)?.epoch).toBeGreaterThanOrEqual(2);
  } finally {
    await first.stop();
    await producer.disconnect();
  }
}

async function committed(brokers: string[], groupId: string, topic: string): Promise<Array<{ partition: number; offset: string; metadata: string | null }>> {
  const admin = testKafka(brokers).admin();
  await admin.connect();
  try {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return t?.partitions ?? [];
  } finally {
    await admin.disconnect();
  }
}

describe('a state mismatch between Kafka and ClickHouse', () => {
  it('stops the aggregator with what to run when committed offsets name checkpoints this ClickHouse does not have', async () => {
    const brokers = testKafkaBrokers();
    const config = testCoreConfig(brokers);
    await ensurePipelineTopics(createKafka(brokers, 'mismatch-setup', silentLogger()), config);
    await aggregateSomething(brokers, config, 'mismatch-a');
    // A fresh CLICKHOUSE_PATH with the old broker: the checkpoints are gone, the offsets are not.
    await ch.client.command({ query: 'TRUNCATE TABLE aggregator_checkpoints' });
    const before = await committed(brokers, config.aggregator.groupId, config.topics.partials);

    const second: RunningAggregator = await startConfiguredAggregator(createKafka(brokers, 'mismatch-2', silentLogger()), ch, config, silentLogger());
    try {
      expect(second.health().status).not.toBe('failed');
      const err = await second.fatal;
      expect(err.message).toContain('which this ClickHouse does not have in aggregator_checkpoints');
      expect(err.message).toContain('tributary reset --yes');
      expect(err.message).toContain(`--group ${config.aggregator.groupId}`);
      expect(second.health()).toEqual({ status: 'failed', error: err.message });
      expect(await committed(brokers, config.aggregator.groupId, config.topics.partials)).toEqual(before);
    } finally {
      await second.stop();
    }
  });

  it('stops the aggregator when the broker lost the offsets of a group whose progress is in ClickHouse', async () => {
    const brokers = testKafkaBrokers();
    const config = testCoreConfig(brokers);
    await ensurePipelineTopics(createKafka(brokers, 'mismatch-setup', silentLogger()), config);
    await aggregateSomething(brokers, config, 'mismatch-b');
    const admin = testKafka(brokers).admin();
    await admin.connect();
    await admin.deleteGroups([config.aggregator.groupId]);
    await admin.disconnect();

    const second: RunningAggregator = await startConfiguredAggregator(createKafka(brokers, 'mismatch-3', silentLogger()), ch, config, silentLogger());
    try {
      const err = await second.fatal;
      expect(err.message).toContain('reading from the beginning would count those events again');
      expect(await countEvents(ch, 'mismatch-b')).toBe(30);
    } finally {
      await second.stop();
    }
  });
});
