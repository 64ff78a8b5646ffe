import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { testKafka } from './helpers/aggregator-harness.ts';
import { testKafkaBrokers, uniqueName, waitFor } from './setup/kafka-test-env.ts';

const CLI = fileURLToPath(new URL('../../bin/tributary.mjs', import.meta.url));

// `tributary aggregator` against a broker whose group offsets name a checkpoint that a fresh
// CLICKHOUSE_PATH cannot have (issue 9, point 4): it must exit non-zero with what to run, not
// keep running as a silent black hole.
describe('tributary aggregator on a state mismatch', () => {
  it('exits 1 and says what happened and what to run', { timeout: 120_000 }, async () => {
    const brokers = testKafkaBrokers();
    const topic = uniqueName('cli-fatal-partials');
    const group = uniqueName('cli-fatal-group');
    const kafka = testKafka(brokers);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    // The committed offset must lie inside the log: kafkajs resets an out-of-range one itself.
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ value: 'a' }, { value: 'b' }, { value: 'c' }, { value: 'd' }] });
    await producer.disconnect();
    // An earlier run's offsets: partition 0 at 3, naming a checkpoint of another ClickHouse.
    const earlier = kafka.consumer({ groupId: group, sessionTimeout: 6000, heartbeatInterval: 1000 });
    let joined = false;
    earlier.on(earlier.events.GROUP_JOIN, () => {
      joined = true;
    });
    await earlier.connect();
    await earlier.subscribe({ topic, fromBeginning: true });
    await earlier.run({ autoCommit: false, eachBatch: async () => undefined });
    await waitFor(() => joined, 'the earlier run joined', 30_000);
    await earlier.commitOffsets([{ topic, partition: 0, offset: '3', metadata: 'tributary:v2:4:checkpoint-of-an-earlier-clickhouse' }]);
    await earlier.disconnect();

    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(KAFKA_|CLICKHOUSE_|AGGREGATOR_|PARTIALS_|METRICS_)/.test(k)));
    const child = spawn(process.execPath, [CLI, 'aggregator'], {
      env: {
        ...base,
        KAFKA_BROKERS: brokers.join(','),
        CLICKHOUSE_PATH: mkdtempSync(join(tmpdir(), 'trib-cli-fatal-')),
        PARTIALS_TOPIC: topic,
        DEAD_LETTER_TOPIC: `${topic}.dlq`,
        REJECTED_TOPIC: `${topic}.rejected`,
        AGGREGATOR_GROUP: group,
        AGGREGATOR_SESSION_TIMEOUT_MS: '6000',
        METRICS_PORT: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(code, `stdout:\n${stdout.slice(-3000)}\nstderr:\n${stderr.slice(-3000)}`).toBe(1);
    expect(stderr).toContain('checkpoint-of-an-earlier-clickhouse');
    expect(stderr).toContain('tributary reset --yes');
    expect(stdout.split('\n').filter((l) => l.includes('"event":"aggregator_fatal"'))).toHaveLength(1);
  });
});
