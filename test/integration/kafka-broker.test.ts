import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, type Consumer, type KafkaMessage } from 'kafkajs';
import { afterEach, describe, expect, inject, it } from 'vitest';
import {
  LocalKafkaError,
  fetchKafkaJars,
  localKafkaStatus,
  startLocalKafka,
  stopLocalKafka,
  type LocalKafkaOptions,
} from '../../tools/kafka-local/local-broker.ts';
import { isPortFree } from '../../core/os-probes.ts';
import { testKafkaBrokers, uniqueName, waitFor } from './setup/kafka-test-env.ts';

const kafka = new Kafka({ clientId: 'kafka-broker-test', brokers: testKafkaBrokers(), logLevel: logLevel.WARN });
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function createTopics(...topics: string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: topics.map((topic) => ({ topic, numPartitions: 1 })), waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

/** A consumer (read_committed, kafkajs' default) collecting every value of `topic` from the start. */
async function collect(topic: string, groupId: string): Promise<string[]> {
  const values: string[] = [];
  const consumer: Consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  cleanups.push(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }: { message: KafkaMessage }) => {
      values.push(message.value?.toString() ?? '');
    },
  });
  return values;
}

async function committedOffset(groupId: string, topic: string): Promise<string | undefined> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
    return offsets[0]?.partitions.find((p) => p.partition === 0)?.offset;
  } finally {
    await admin.disconnect();
  }
}

describe('Kafka broker used by the integration tests', () => {
  // global-kafka.ts documents process.env as a secondary channel; this keeps that claim true.
  it('exposes the broker address through inject() and the inherited environment', () => {
    expect(inject('kafkaBrokers')).not.toBe('');
    expect(process.env.KAFKA_BROKERS).toBe(inject('kafkaBrokers'));
    expect(process.env.KAFKAJS_NO_PARTITIONER_WARNING).toBe('1');
  });

  it('delivers a message from an idempotent producer to a new consumer group', async () => {
    const topic = uniqueName('broker-roundtrip');
    await createTopics(topic);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    cleanups.push(() => producer.disconnect());
    await producer.connect();
    await producer.send({ topic, messages: [{ key: 'source-1', value: 'hello' }] });

    const received = await collect(topic, uniqueName('broker-roundtrip-group'));
    await waitFor(() => received.length >= 1, 'the produced message');
    expect(received).toEqual(['hello']);
  });

  // The aggregator's exactly-once path: output and input offsets commit in one transaction.
  it('commits a transaction that includes consumer offsets (sendOffsets)', async () => {
    const input = uniqueName('tx-input');
    const output = uniqueName('tx-output');
    const groupId = uniqueName('tx-aggregator');
    await createTopics(input, output);

    const producer = kafka.producer({ transactionalId: uniqueName('tx-id'), maxInFlightRequests: 1, idempotent: true });
    cleanups.push(() => producer.disconnect());
    await producer.connect();
    const tx = await producer.transaction();
    await tx.send({ topic: output, messages: [{ key: 'k', value: 'committed-1' }] });
    await tx.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: 0, offset: '1' }] }] });
    await tx.commit();

    // commit() returns once the coordinator has decided; the offsets become visible when it
    // has written the commit markers, a moment later. (kafkajs' OffsetFetch predates
    // require_stable, so a consumer taking over in that moment can read the older offset.)
    await waitFor(async () => (await committedOffset(groupId, input)) === '1', 'the transactional offset commit');
    const received = await collect(output, uniqueName('tx-reader'));
    await waitFor(() => received.length >= 1, 'the committed transactional message');
    expect(received).toEqual(['committed-1']);
  });

  it('hides an aborted transaction and its offsets from read_committed consumers', async () => {
    const input = uniqueName('tx-input');
    const output = uniqueName('tx-output');
    const groupId = uniqueName('tx-aggregator');
    await createTopics(input, output);

    const producer = kafka.producer({ transactionalId: uniqueName('tx-id'), maxInFlightRequests: 1, idempotent: true });
    cleanups.push(() => producer.disconnect());
    await producer.connect();
    const aborted = await producer.transaction();
    await aborted.send({ topic: output, messages: [{ value: 'aborted' }] });
    await aborted.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: 0, offset: '5' }] }] });
    await aborted.abort();
    const committed = await producer.transaction();
    await committed.send({ topic: output, messages: [{ value: 'after-abort' }] });
    await committed.commit();

    const received = await collect(output, uniqueName('tx-reader'));
    // The committed message comes after the aborted one in the log: once it is in, the
    // aborted one has been skipped rather than not yet read.
    await waitFor(() => received.includes('after-abort'), 'the message committed after the abort');
    expect(received).toEqual(['after-abort']);
    expect(await committedOffset(groupId, input)).toBe('-1');
  });
});

const local = inject('testLocalKafka');

describe.skipIf(local === null)('local broker lifecycle (not run against an external KAFKA_BROKERS)', () => {
  it('returns the running broker when started a second time', async () => {
    if (local === null) return;
    const again = await startLocalKafka({ cacheDir: local.cacheDir, dataDir: local.dataDir, port: local.port });
    expect(again).toMatchObject({ alreadyRunning: true, pid: local.pid, brokers: `127.0.0.1:${local.port}` });
  });

  it('starts one broker for concurrent starts, reports status, and stops idempotently', async () => {
    if (local === null) return;
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-kafka-lifecycle-'));
    const options: LocalKafkaOptions = { cacheDir: local.cacheDir, dataDir, port: await freePortPair() };
    cleanups.push(async () => {
      await stopLocalKafka(options);
      rmSync(dataDir, { recursive: true, force: true });
    });

    const [a, b] = await Promise.all([startLocalKafka(options), startLocalKafka(options)]);
    expect(a.pid).toBe(b.pid);
    expect([a.alreadyRunning, b.alreadyRunning].sort()).toEqual([false, true]);
    expect(await localKafkaStatus(options)).toMatchObject({ running: true, pid: a.pid, brokers: a.brokers });

    expect(await stopLocalKafka(options)).toMatchObject({ wasRunning: true, pid: a.pid });
    const stopped = await localKafkaStatus(options);
    expect(stopped.running).toBe(false);
    expect(stopped.pid).toBeUndefined();
    expect(await stopLocalKafka(options)).toMatchObject({ wasRunning: false });
  });

  it('refuses a port another process holds, naming KAFKA_BROKERS as the way to use it', async () => {
    if (local === null) return;
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-kafka-busy-'));
    const port = await freePortPair();
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    cleanups.push(async () => {
      await new Promise((resolve) => squatter.close(resolve));
      rmSync(dataDir, { recursive: true, force: true });
    });

    const error = await startLocalKafka({ cacheDir: local.cacheDir, dataDir, port }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'port_in_use' });
    expect((error as Error).message).toContain(`KAFKA_BROKERS=127.0.0.1:${port}`);
  });

  it('reports a broker that dies during start-up with the tail of its log', async () => {
    if (local === null) return;
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-kafka-dies-'));
    const options: LocalKafkaOptions = { cacheDir: local.cacheDir, dataDir, port: await freePortPair(), maxHeap: 'not-a-size' };
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));

    const error = await startLocalKafka(options).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'broker_exited', logFile: join(dataDir, 'kafka.log') });
    expect((error as Error).message).toMatch(/Invalid maximum heap size/);
    expect(await localKafkaStatus(options)).toMatchObject({ running: false });
  });
});

describe('local broker prerequisites', () => {
  it('explains how to get Java when it is missing', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-kafka-nojava-'));
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const error = await startLocalKafka({ dataDir, javaBin: join(dataDir, 'no-such-java') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LocalKafkaError);
    expect(error).toMatchObject({ code: 'java_missing' });
    expect((error as Error).message).toMatch(/Java 17\+ is required.*openjdk-17-jre-headless.*KAFKA_BROKERS/);
  });

  it('explains how to get Maven when the jars are not cached yet', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'tributary-kafka-nomvn-'));
    cleanups.push(async () => rmSync(cacheDir, { recursive: true, force: true }));
    const error = await fetchKafkaJars({ cacheDir, mvnBin: join(cacheDir, 'no-such-mvn') }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'maven_missing' });
    expect((error as Error).message).toMatch(/install maven.*KAFKA_BROKERS/);
  });
});

/** A port p with p + 1 also free (the controller port defaults to port + 1). */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer().once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
      });
    });
    if (port < 65535 && (await isPortFree(port + 1))) return port;
  }
  throw new Error('no two adjacent free ports found');
}
