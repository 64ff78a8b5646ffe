import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startLocalKafka, stopLocalKafka, type LocalKafkaOptions } from '../../../tools/kafka-local/local-broker.ts';
import { resolveLocalKafkaConfig } from '../../../tools/kafka-local/local-kafka-config.ts';
import { freePortPair } from '../../support/ports.ts';

/**
 * A Kafka broker of the test file's own (own port pair and data dir), for tests that take Kafka
 * away: stopping it does not disturb the run's shared broker (../setup/global-kafka.ts).
 */
export interface OwnBroker {
  /** `127.0.0.1:<port>`, as the clients under test take it. */
  readonly brokers: string[];
  /** Starts the broker again on its data (after `stop()`), or waits until the running one is ready. */
  start(): Promise<void>;
  /** Stops the broker: an outage. */
  stop(): Promise<void>;
}

/**
 * Registers `beforeAll`/`afterAll` hooks that start the file's own broker once and stop it at the
 * end, whatever state the tests left it in; the handle is for use inside the tests.
 *
 * @example
 * const broker = useOwnBroker('trib-outage');
 * it('...', async () => { await broker.stop(); ...; await broker.start(); });
 */
export function useOwnBroker(prefix: string): OwnBroker {
  let options: LocalKafkaOptions | undefined;
  const opts = (): LocalKafkaOptions => {
    if (options === undefined) throw new Error('the own broker is used before its beforeAll ran');
    return options;
  };
  beforeAll(async () => {
    options = { cacheDir: resolveLocalKafkaConfig().cacheDir, dataDir: mkdtempSync(join(tmpdir(), `${prefix}-kafka-`)), port: await freePortPair() };
    await startLocalKafka(options);
  }, 180_000);
  afterAll(async () => {
    if (options !== undefined) await stopLocalKafka(options).catch(() => undefined);
  });
  return {
    get brokers() {
      return [`127.0.0.1:${String(opts().port)}`];
    },
    start: async () => void (await startLocalKafka(opts())),
    stop: async () => void (await stopLocalKafka(opts())),
  };
}
