/**
 * What integration tests need to talk to the run's Kafka broker (started by ./global-kafka.ts).
 *
 * @example
 * const kafka = new Kafka({ clientId: 'my-test', brokers: testKafkaBrokers() });
 * const topic = uniqueName('partials');
 */
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';

export function testKafkaBrokers(): string[] {
  return inject('kafkaBrokers').split(',').map((broker) => broker.trim()).filter((broker) => broker !== '');
}

/** Topic and group names must be unique per test: the broker is shared by the whole run. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Polls `condition` until it holds; tests wait on conditions, never on fixed sleeps. */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
