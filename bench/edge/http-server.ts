/**
 * The Node edge for the HTTP benchmark, in its own process (so the load generator does not share
 * its event loop): `startNodeEdge`, exactly what `tributary edge` runs, with in-memory sinks
 * instead of Kafka, to measure the edge alone. Prints `{"port":N}` when listening; on SIGTERM
 * closes the edge (last flush), prints what the sinks received as one JSON line, and exits.
 */
import { parseEdgeConfig } from '../../edge/config.ts';
import { startNodeEdge } from '../../edge/node/server.ts';
import { createMemorySinks } from './sink.ts';

const config = parseEdgeConfig(process.env);
if (!config.ok) {
  process.stderr.write(`${config.errors.join('\n')}\n`);
  process.exit(2);
}
const sinks = createMemorySinks();
const edge = await startNodeEdge({ config: config.config, brokers: [], port: 0, hostname: '127.0.0.1', sourceId: 'edge-bench', sinks });
process.stdout.write(`${JSON.stringify({ port: Number(new URL(edge.url).port) })}\n`);
process.once('SIGTERM', () => {
  void (async () => {
    const health = (await (await fetch(`${edge.url}/health`)).json()) as Record<string, unknown>;
    await edge.close();
    const cpu = process.cpuUsage();
    process.stdout.write(`${JSON.stringify({ ...sinks.stats(), dropped: health.dropped, refused: health.refusedRequests, cpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
    process.exit(0);
  })();
});
