/**
 * Edge benchmark (b): HTTP on the Node edge, driven by autocannon from this process against
 * the edge running in a child process (bench/edge/http-server.ts, in-memory sinks: no Kafka).
 * - batches: `POST /v1/batch` with 100-event analytics.js-shaped bodies (group commit: each
 *   request is answered after the flush carrying it);
 * - beacons: `POST /v1/collect`, one event per request, `text/plain`, answered 202 at once.
 * Every request carries fresh messageIds, so nothing is dropped as a retry.
 */
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Profile } from './profile.ts';
import type { SinkStats } from './sink.ts';

export interface HttpRunResult {
  requestsPerS: number;
  eventsPerS: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  non2xx: number;
  errors: number;
  requests: number;
}

/** What the server process reported when stopped, over its whole life (warm-up and all runs). */
export interface ServerReport extends SinkStats {
  /** `/health` dropped counters (bots, duplicates). */
  dropped: Record<string, number>;
  /** `/health` refused requests per error code. */
  refused: Record<string, number>;
  /** CPU time of the server process (all its threads). */
  cpuMs: number;
}

export interface HttpBenchOptions {
  mode: 'batch' | 'beacon';
  profile: Profile;
  durationS: number;
  connections: number;
  /** Edge settings (environment of the server process). */
  env: Record<string, string>;
  /** `baseline`: a trivial Hono app on the same server stack instead of the edge (beacons only). */
  server?: 'edge' | 'baseline';
}

const SERVERS = {
  edge: fileURLToPath(new URL('./http-server.ts', import.meta.url)),
  baseline: fileURLToPath(new URL('./http-baseline-server.ts', import.meta.url)),
};
const ID_PREFIX = '"messageId":"ajs-next-';

async function startServer(script: string, env: Record<string, string>): Promise<{ child: ChildProcess; port: number; lines: AsyncIterator<string> }> {
  // BENCH_SERVER_NODE_OPTIONS: e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the edge.
  const child = spawn(process.execPath, [...(process.env.BENCH_SERVER_NODE_OPTIONS ?? '').split(' ').filter((s) => s !== ''), '--import', 'tsx', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout as NonNullable<ChildProcess['stdout']> })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) throw new Error('the benchmark edge exited before listening');
  return { child, port: (JSON.parse(first.value) as { port: number }).port, lines };
}

async function stopServer(server: { child: ChildProcess; lines: AsyncIterator<string> }): Promise<ServerReport> {
  server.child.kill('SIGTERM');
  const last = await server.lines.next();
  if (last.done) throw new Error('the benchmark edge exited without its stats');
  return JSON.parse(last.value) as ServerReport;
}

/** Runs autocannon once for `durationS` against a running edge. */
function cannon(o: HttpBenchOptions, port: number, counter: { n: number; bytes: number }): Promise<autocannon.Result> {
  const decoder = new TextDecoder();
  const bodies = (o.mode === 'batch' ? o.profile.batches : o.profile.beacons).map((b) => decoder.decode(b));
  const countries = o.mode === 'batch' ? o.profile.batchCountries : o.profile.beaconCountries;
  const base =
    o.mode === 'batch'
      ? { 'content-type': 'application/json', authorization: `Basic ${Buffer.from('wk_bench:').toString('base64')}` }
      : { 'content-type': 'text/plain;charset=UTF-8' };
  return autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: o.connections,
    duration: o.durationS,
    requests: [
      {
        method: 'POST',
        path: o.mode === 'batch' ? '/v1/batch' : '/v1/collect',
        setupRequest(req) {
          const i = counter.n++ % bodies.length;
          // A fresh messageId prefix per request: every event is new to the edge's dedup set.
          req.body = (bodies[i] as string).replaceAll(ID_PREFIX, `"messageId":"r${counter.n}-`);
          counter.bytes += Buffer.byteLength(req.body);
          req.headers = { ...base, 'cf-ipcountry': countries[i] as string };
          return req;
        },
      },
    ],
  });
}

/**
 * Warm-up run, then `runs` measured runs against one server; results per run, the server's
 * report, and the request body bytes sent over the server's life (for the compaction it achieved).
 */
export async function benchHttp(o: HttpBenchOptions, runs: number): Promise<{ runs: HttpRunResult[]; server: ServerReport; requestBytes: number }> {
  const server = await startServer(SERVERS[o.server ?? 'edge'], o.env);
  const counter = { n: 0, bytes: 0 };
  const perRequest = o.mode === 'batch' ? o.profile.events / o.profile.batches.length : 1;
  const results: autocannon.Result[] = [];
  try {
    await cannon({ ...o, durationS: Math.min(3, o.durationS) }, server.port, counter);
    for (let r = 0; r < runs; r++) results.push(await cannon(o, server.port, counter));
  } catch (e) {
    server.child.kill('SIGKILL');
    throw e;
  }
  const stats = await stopServer(server);
  return {
    runs: results.map((res) => ({
      requestsPerS: res['2xx'] / res.duration,
      eventsPerS: (res['2xx'] * perRequest) / res.duration,
      latencyP50Ms: res.latency.p50,
      latencyP99Ms: res.latency.p99,
      non2xx: res.non2xx,
      errors: res.errors,
      requests: res['2xx'],
    })),
    server: stats,
    requestBytes: counter.bytes,
  };
}
