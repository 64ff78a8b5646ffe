import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getHealth, spawnTributary, type TributaryProcess } from '../support/tributary-process.ts';
import { useOwnBroker } from './helpers/own-broker.ts';
import { uniqueName, waitFor } from './setup/kafka-test-env.ts';

// Deliverable 5 of issue #9 with the broker down (this file's own broker, so stopping it does not
// disturb the shared one): the edge's /health says 503 "degraded" while Kafka is unreachable and
// 200 once it is back, and SIGTERM ends every long-running command even though their Kafka
// clients cannot close cleanly.
const dir = mkdtempSync(join(tmpdir(), 'trib-broker-down-'));
const broker = useOwnBroker('trib-broker-down');
const processes: Record<string, TributaryProcess> = {};

afterAll(() => {
  for (const p of Object.values(processes)) p.kill('SIGKILL');
});

const topics = { PARTIALS_TOPIC: uniqueName('down-partials'), REJECTED_TOPIC: uniqueName('down-rejected'), DEAD_LETTER_TOPIC: uniqueName('down-dlq') };
const common = (): Record<string, string> => ({
  KAFKA_BROKERS: broker.brokers.join(','),
  ...topics,
  AGGREGATOR_GROUP: uniqueName('down-aggregator'),
  // The deadline is what is under test, not its length: 2 s keeps the three waits for it short.
  SHUTDOWN_TIMEOUT_MS: '2000',
  FLUSH_INTERVAL_MS: '200',
  HEARTBEAT_MS: '500',
  LOG_LEVEL: 'info',
});
const edgeEnv = { TRIBUTARY_WRITE_KEYS: 'wk_down:down', SALT_SOURCE: 'static', PSEUDONYM_SALT: 'broker-down-test-salt-0123456789' };

/**
 * Each process exited by itself after SIGTERM (not killed), having logged the request; or, for
 * a process whose consumer failed during the outage before the signal, exited non-zero saying so.
 */
async function expectEndedBySigterm(names: string[]): Promise<void> {
  for (const name of names) {
    const p = processes[name]!;
    const exit = await p.exited;
    expect(exit.signal, `${name} was killed instead of exiting`).toBeNull();
    if (p.output().includes('"event":"shutdown_requested"')) continue;
    expect(exit.code, `${name} exited before the signal, so it must say why`).not.toBe(0);
    expect(p.output()).toMatch(/stopped: |Tributary stopped/);
  }
}

async function edgeHealth(url: string): Promise<{ status: number; state: unknown } | undefined> {
  const h = await getHealth(url);
  return h && { status: h.status, state: h.body.status };
}

describe('with the broker down', () => {
  it('the edge reports degraded until Kafka is back, and SIGTERM ends every command within its deadline', { timeout: 420_000 }, async () => {
    processes.start = spawnTributary(['start'], { ...common(), CLICKHOUSE_PATH: join(dir, 'ch-start'), DEDUP_DIR: join(dir, 'dedup-start'), PORT: '0', QUERY_PORT: '0' });
    processes.edge = spawnTributary(['edge'], { ...common(), ...edgeEnv, PORT: '0', DEDUP_DIR: join(dir, 'dedup-edge') });
    processes.gateway = spawnTributary(['gateway'], { ...common(), GATEWAY_SIGNING_KEYS: 'edge-1:gateway-secret-0123456789abcdef0123456789', SALT_SOURCE: 'static', GATEWAY_PORT: '0' });
    processes.aggregator = spawnTributary(['aggregator'], { ...common(), AGGREGATOR_GROUP: uniqueName('down-aggregator-2'), CLICKHOUSE_PATH: join(dir, 'ch-aggregator'), METRICS_PORT: '0' });
    processes['query-api'] = spawnTributary(['query-api'], { ...common(), CLICKHOUSE_PATH: join(dir, 'ch-query'), QUERY_PORT: '0', QUERY_READ_KEYS: 'rk_lifecycle_test_0123456789abcdef:*' });

    const [, startEdge] = await processes.start.waitForOutput(/Edge {7}: (http:\/\/\S+)/, 180_000);
    const [, edge] = await processes.edge.waitForOutput(/"event":"edge_listening","url":"(http:\/\/[^"]+)"/, 180_000);
    await processes.gateway.waitForOutput(/"event":"gateway_listening"/, 180_000);
    await processes.aggregator.waitForOutput(/"event":"aggregator_started"/, 180_000);
    await processes['query-api'].waitForOutput(/"event":"query_api_listening"/, 180_000);
    await waitFor(async () => (await edgeHealth(edge!))?.status === 200, 'the edge to be healthy', 60_000);

    await broker.stop();
    // SIGTERM with the broker just gone: the Kafka clients of these cannot close cleanly.
    for (const name of ['aggregator', 'gateway', 'query-api']) processes[name]!.kill('SIGTERM');
    await expectEndedBySigterm(['aggregator', 'gateway', 'query-api']);

    // A request waits for its flush, which cannot reach Kafka: 503 sink_unavailable...
    const refused = await fetch(`${edge}/v1/track`, {
      method: 'POST',
      headers: { authorization: `Basic ${btoa('wk_down:')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'track', event: 'down', userId: 'u1', messageId: 'down-1' }),
    });
    expect(refused.status).toBe(503);
    // ...and /health says so too, on `tributary edge` and on the edge of `tributary start`.
    await waitFor(async () => {
      const h = await edgeHealth(edge!);
      return h?.status === 503 && h.state === 'degraded';
    }, 'tributary edge /health to say degraded', 60_000);
    await waitFor(async () => {
      const h = await edgeHealth(startEdge!);
      return h === undefined || (h.status === 503 && h.state !== 'ok');
    }, 'tributary start /health to say degraded (or start to have stopped on a failed consumer)', 60_000);
    processes.start.kill('SIGTERM');
    await expectEndedBySigterm(['start']);

    await broker.start();
    await waitFor(async () => (await edgeHealth(edge!))?.status === 200, 'the edge to be healthy again once Kafka is back', 120_000);

    await broker.stop();
    await waitFor(async () => (await edgeHealth(edge!))?.status === 503, 'the edge to notice the second outage', 60_000);
    processes.edge.kill('SIGTERM');
    await expectEndedBySigterm(['edge']);
  });
});
