/**
 * The Node edge for the HTTP benchmark, in its own process (so the load generator does not share
 * its event loop): `startNodeEdge`, exactly what `tributary edge` runs, with an in-memory sink
 * instead of Kafka, to measure the edge alone. `EDGE_PROCESSES=N` runs it as N worker processes
 * (node:cluster), each with its own sink. Prints `{"port":N}` when listening; on SIGTERM closes
 * the edge (last flush), prints what the sink received as one JSON line, and exits.
 */
import cluster from 'node:cluster';
import { parseEdgeConfig } from '../../edge/config.ts';
import { startNodeEdge } from '../../edge/node/server.ts';
import { createMemorySink, type SinkStats } from './sink.ts';
import type { WorkerSinkStatsMessage } from './worker-sinks.ts';

const config = parseEdgeConfig(process.env);
if (!config.ok) {
  process.stderr.write(`${config.errors.join('\n')}\n`);
  process.exit(2);
}
const processes = Number(process.env.EDGE_PROCESSES ?? 1);
const memory = processes > 1 ? undefined : createMemorySink();
const workerStats: SinkStats[] = [];
cluster.on('message', (_worker, m: WorkerSinkStatsMessage) => {
  if (m?.type === 'bench:sink-stats') workerStats.push(m.stats);
});
const edge = await startNodeEdge({
  config: config.config,
  brokers: [],
  port: 0,
  hostname: '127.0.0.1',
  sourceId: 'edge-bench',
  ...(memory ? { sink: memory.sink } : { processes, workerSetup: new URL('./worker-sinks.ts', import.meta.url).href }),
});
process.stdout.write(`${JSON.stringify({ port: Number(new URL(edge.url).port) })}\n`);

const sum = (records: Array<Record<string, number> | undefined>): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const r of records) for (const [k, v] of Object.entries(r ?? {})) out[k] = (out[k] ?? 0) + v;
  return out;
};
process.once('SIGTERM', () => {
  void (async () => {
    const health = await edge.health();
    await edge.close();
    const cpu = process.cpuUsage();
    const stats: SinkStats = memory
      ? memory.stats()
      : workerStats.reduce((a, s) => ({ envelopes: a.envelopes + s.envelopes, envelopeBytes: a.envelopeBytes + s.envelopeBytes, rows: a.rows + s.rows, events: a.events + s.events, rejected: a.rejected + s.rejected }), {
          envelopes: 0,
          envelopeBytes: 0,
          rows: 0,
          events: 0,
          rejected: 0,
        });
    process.stdout.write(
      `${JSON.stringify({
        ...stats,
        processes,
        dropped: sum(health.map((h) => h.body.dropped as Record<string, number>)),
        refused: sum(health.map((h) => h.body.refusedRequests as Record<string, number>)),
        cpuMs: (cpu.user + cpu.system) / 1000,
      })}\n`,
    );
    process.exit(0);
  })();
});
