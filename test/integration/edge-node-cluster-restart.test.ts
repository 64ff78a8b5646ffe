import cluster from 'node:cluster';
import { Agent } from 'node:http';
import { describe, expect, it } from 'vitest';
import { createKafka } from '../../core/kafka/client.ts';
import { silentLogger } from '../../core/log.ts';
import { parseEdgeConfig } from '../../edge/config.ts';
import { startNodeEdge } from '../../edge/node/server.ts';
import { beacon } from './helpers/beacon.ts';
import { useOwnBroker } from './helpers/own-broker.ts';
import { tempDedupDir } from './setup/dedup-dir.ts';
import { uniqueName, waitFor } from './setup/kafka-test-env.ts';

// EDGE_PROCESSES=2 while Kafka is down: a worker that dies is replaced, and a replacement that
// cannot start (its producer cannot connect) is tried again with backoff until Kafka is back —
// the cluster does not stay a process short. Closing while a retry is pending ends at once and
// forks nothing more. The broker is this file's own (own port and data dir).
const broker = useOwnBroker('trib-cluster-restart');

async function startCluster(lines: Array<Record<string, unknown>>) {
  const topics = { partials: uniqueName('cl-restart-partials'), rejected: uniqueName('cl-restart-rejected') };
  const admin = createKafka(broker.brokers, 'cluster-restart-setup', silentLogger()).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: topics.partials }, { topic: topics.rejected }], waitForLeaders: true });
  await admin.disconnect();
  const config = parseEdgeConfig({ TRIBUTARY_WRITE_KEYS: 'wk_it:it-site', PSEUDONYM_SALT: 'integration-salt-0123456789', FLUSH_INTERVAL_MS: '100', HEARTBEAT_MS: '200', DEDUP_DIR: tempDedupDir() });
  if (!config.ok) throw new Error(config.errors.join('\n'));
  return startNodeEdge({ config: config.config, brokers: broker.brokers, port: 0, hostname: '127.0.0.1', topics, sourceId: uniqueName('edge-clr'), processes: 2, closeDeadlineMs: 5_000, log: (fields) => void lines.push(fields) });
}

const liveWorkers = () => Object.values(cluster.workers ?? {}).filter((w) => w !== undefined && !w.isDead());

describe('edge cluster worker replacement while Kafka is down', () => {
  it('retries the replacement with backoff until Kafka is back, then serves from N processes again', { timeout: 150_000 }, async () => {
    const lines: Array<Record<string, unknown>> = [];
    const events = (name: string) => lines.filter((l) => l.event === name);
    const edge = await startCluster(lines);
    try {
      expect(liveWorkers()).toHaveLength(2);
      await broker.stop();
      const victim = liveWorkers()[0]!;
      victim.process.kill('SIGKILL');
      await waitFor(() => events('edge_worker_restart_failed').length >= 1, 'a failed start of the replacement while Kafka is down', 90_000);
      expect(events('edge_worker_restart_failed')[0]).toMatchObject({ attempt: 1 });
      expect(events('edge_worker_replaced')).toEqual([]);

      await broker.start();
      await waitFor(() => events('edge_worker_replaced').length === 1, 'the replacement to start once Kafka is back', 90_000);
      // Attempts went on after the failed ones (the attempt that started is numbered after them).
      expect(events('edge_worker_replaced')[0]?.attempts).toBeGreaterThan(events('edge_worker_restart_failed').length);
      expect(liveWorkers()).toHaveLength(2);
      const health = await edge.health();
      // Slot 1 runs under a new incarnation id (`<base>-1.<k>`, never its predecessor's: ADR 0010), slot 2 is untouched.
      const ids = health.map((h) => h.sourceId).sort();
      expect(ids[1]).toBe(`${edge.sourceId}-2`);
      expect(ids[0]).toMatch(new RegExp(`^${edge.sourceId}-1\\.\\d+$`));
      // Every connection is served, whichever worker gets it.
      const agent = new Agent({ keepAlive: false });
      const now = new Date().toISOString();
      const statuses = await Promise.all(Array.from({ length: 20 }, (_, i) => beacon(edge.url, agent, { type: 'track', event: 'view', userId: `u${i}`, messageId: `clr-${i}`, timestamp: now, writeKey: 'wk_it' })));
      agent.destroy();
      expect(statuses.every((s) => s === 202)).toBe(true);
    } finally {
      await edge.close();
    }
    expect(liveWorkers()).toHaveLength(0);
  });

  it('closes promptly while a replacement waits for its next attempt, and forks nothing afterwards', { timeout: 150_000 }, async () => {
    const lines: Array<Record<string, unknown>> = [];
    const events = (name: string) => lines.filter((l) => l.event === name);
    await broker.start();
    const edge = await startCluster(lines);
    let closed = false;
    try {
      await broker.stop();
      liveWorkers()[0]!.process.kill('SIGKILL');
      await waitFor(() => events('edge_worker_restart_failed').length >= 1, 'a failed start of the replacement', 90_000);
      let forkedSinceClose = 0;
      const onFork = (): void => void forkedSinceClose++;
      cluster.on('fork', onFork);
      const started = Date.now();
      await edge.close();
      closed = true;
      // Within the shutdown bound (SHUTDOWN_TIMEOUT_MS, default 10 s): nothing waits for the pending attempt.
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(liveWorkers()).toHaveLength(0);
      // The pending attempt (due 1–4 s after the failure) never forks.
      await new Promise((r) => setTimeout(r, 5_000));
      cluster.off('fork', onFork);
      expect(forkedSinceClose).toBe(0);
      expect(Object.keys(cluster.workers ?? {})).toHaveLength(0);
      expect(events('edge_worker_replaced')).toEqual([]);
    } finally {
      if (!closed) await edge.close();
    }
  });
});
