/**
 * vitest globalSetup of the `integration` project: one Kafka broker for the whole run.
 *
 * - `KAFKA_BROKERS` set: tests use that broker; nothing is started or stopped.
 * - otherwise: a local broker (tools/kafka-local/local-broker.ts) on the test-only data dir
 *   `<cacheDir>/kafka-data-test`, port 19092, clear of a running `tributary start` on 9092 (or `TRIBUTARY_TEST_KAFKA_PORT`; the controller
 *   takes port + 1). Several runs on one machine (two terminals, watch mode, several engineers
 *   sharing a checkout) share that broker: each run holds a lease, the first run wipes the
 *   folder and starts the broker, the last one to finish stops it. Tests therefore never rely on
 *   an empty broker — they use unique topic and group names (docs/ARCHITECTURE.md §4). Data and log stay
 *   on disk until the next cold start, for post-mortems.
 *
 * Tests get the address with `inject('kafkaBrokers')` (helpers in ./kafka-test-env.ts). That is
 * the supported channel: it reaches every pool. `process.env.KAFKA_BROKERS` is also set, and
 * forked workers do inherit it (they are spawned after globalSetup runs; kafka-broker.test.ts
 * checks this), but use it only for code under test that reads its config from the environment.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { withFileLock } from '../../../tools/kafka-local/file-lock.ts';
import { startLocalKafka, stopLocalKafka } from '../../../tools/kafka-local/local-broker.ts';
import { resolveLocalKafkaConfig, type LocalKafkaOptions } from '../../../tools/kafka-local/local-kafka-config.ts';
import { isProcessAlive } from '../../../core/os-probes.ts';

/** What the setup started, for tests of the local broker itself; `null` with an external broker. */
export interface TestLocalKafka {
  cacheDir: string;
  dataDir: string;
  port: number;
  pid: number;
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** Comma-separated `host:port` list, as in KAFKA_BROKERS. */
    kafkaBrokers: string;
    testLocalKafka: TestLocalKafka | null;
  }
}

const LOCK_TIMEOUT_MS = 180_000;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
  const external = process.env.KAFKA_BROKERS?.trim();
  if (external) {
    project.provide('kafkaBrokers', external);
    project.provide('testLocalKafka', null);
    return async () => {};
  }

  const { cacheDir } = resolveLocalKafkaConfig();
  const dataDir = join(cacheDir, 'kafka-data-test');
  const leasesDir = `${dataDir}.runs`;
  const lockFile = `${dataDir}.lock`;
  const options: LocalKafkaOptions = {
    cacheDir,
    dataDir,
    port: testPort(process.env.TRIBUTARY_TEST_KAFKA_PORT),
    onEvent: (event, fields) => console.log(`[global-kafka] ${event} ${JSON.stringify(fields)}`),
  };

  const broker = await withFileLock(lockFile, LOCK_TIMEOUT_MS, 'setting up the test Kafka broker', async () => {
    const otherRuns = liveRuns(leasesDir);
    if (otherRuns.length === 0) {
      // A broker left by an interrupted run still owns the folder: stop it before wiping.
      await stopLocalKafka(options);
      rmSync(dataDir, { recursive: true, force: true });
    } else {
      console.log(`[global-kafka] kafka_test_broker_shared ${JSON.stringify({ other_runs: otherRuns })}`);
    }
    const started = await startLocalKafka(options);
    mkdirSync(leasesDir, { recursive: true });
    writeFileSync(join(leasesDir, String(process.pid)), '');
    return started;
  });

  process.env.KAFKA_BROKERS = broker.brokers;
  project.provide('kafkaBrokers', broker.brokers);
  const port = Number(broker.brokers.slice(broker.brokers.lastIndexOf(':') + 1));
  project.provide('testLocalKafka', { cacheDir, dataDir, port, pid: broker.pid });

  return async () => {
    delete process.env.KAFKA_BROKERS;
    await withFileLock(lockFile, LOCK_TIMEOUT_MS, 'tearing down the test Kafka broker', async () => {
      rmSync(join(leasesDir, String(process.pid)), { force: true });
      if (liveRuns(leasesDir).length === 0) await stopLocalKafka(options);
    });
  };
}

/** Pids of other test runs still using the broker; leases of runs that died are dropped. */
function liveRuns(leasesDir: string): number[] {
  let names: string[];
  try {
    names = readdirSync(leasesDir);
  } catch {
    return [];
  }
  const live: number[] = [];
  for (const name of names) {
    const pid = Number(name);
    if (Number.isInteger(pid) && pid !== process.pid && isProcessAlive(pid)) live.push(pid);
    else rmSync(join(leasesDir, name), { force: true });
  }
  return live;
}

function testPort(text: string | undefined): number {
  if (text === undefined || text.trim() === '') return 19092;
  const port = Number(text);
  if (!Number.isInteger(port) || port <= 0 || port >= 65535) {
    throw new Error(`TRIBUTARY_TEST_KAFKA_PORT must be a TCP port below 65535 (the controller uses port + 1), got '${text}'.`);
  }
  return port;
}
