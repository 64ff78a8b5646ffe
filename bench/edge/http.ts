/**
 * Edge benchmark (b): HTTP on the Node edge, driven by autocannon from this process against
 * the edge running in a child process (bench/edge/http-server.ts, in-memory sinks: no Kafka;
 * `processes` > 1 runs it as that many worker processes, EDGE_PROCESSES).
 * - batches: `POST /v1/batch` with 100-event analytics.js-shaped bodies (group commit: each
 *   request is answered after the flush carrying it);
 * - beacons: `POST /v1/collect`, one event per request, `text/plain`, answered 202 at once.
 * Every request carries fresh messageIds, so nothing is dropped as a retry.
 */
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { treeCpuMs } from './process-cpu.ts';
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
  /** `/health` dropped counters (bots, duplicates), summed over the edge's processes. */
  dropped: Record<string, number>;
  /** `/health` refused requests per error code, summed over the edge's processes. */
  refused: Record<string, number>;
  /** CPU time of the server's main process over its whole life (start-up included, workers not). */
  cpuMs: number;
}

export interface HttpBenchResult {
  runs: HttpRunResult[];
  server: ServerReport;
  /** Request body bytes sent over the server's life (for the compaction it achieved). */
  requestBytes: number;
  /**
   * CPU time of the server and all its processes and threads during the measured runs only
   * (from /proc; undefined elsewhere): what serving those requests cost, without start-up.
   */
  measuredCpuMs: number | undefined;
  /** CPU time of this process (autocannon) during the measured runs: the load generator's share of the machine. */
  loadGeneratorCpuMs: number;
  /** 2xx requests in the measured runs. */
  measuredRequests: number;
}

export interface HttpBenchOptions {
  mode: 'batch' | 'beacon';
  profile: Profile;
  durationS: number;
  connections: number;
  /** Edge settings (environment of the server process). */
  env: Record<string, string>;
  /**
   * Instead of the edge (beacons only): `baseline`, a trivial Hono app on @hono/node-server;
   * `baseline-node`, a trivial node:http server.
   */
  server?: 'edge' | 'baseline' | 'baseline-node';
  /** Edge processes (EDGE_PROCESSES); default 1. */
  processes?: number;
}

const SERVERS = {
  edge: fileURLToPath(new URL('./http-server.ts', import.meta.url)),
  baseline: fileURLToPath(new URL('./http-baseline-server.ts', import.meta.url)),
  'baseline-node': fileURLToPath(new URL('./http-baseline-node-server.ts', import.meta.url)),
};
const ID_PREFIX = '"messageId":"ajs-next-';
/** `ajs-next-`: the part of each messageId rewritten per request. */
const ID_TAG_LENGTH = 9;

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

/**
 * Request bodies as bytes, with where each messageId prefix sits. The load generator shares the
 * CPUs with the edge, so it must stay cheap: a request is its template with a fresh, same-length
 * prefix written into every messageId (`ajs-next-` -> 8 base-36 digits of the request number and
 * `-`), instead of string replacement and re-encoding of ~100 KB per request.
 */
function bodyTemplates(bodies: Uint8Array[]): Array<{ bytes: Buffer; idOffsets: number[] }> {
  return bodies.map((b) => {
    const bytes = Buffer.from(b);
    const idOffsets: number[] = [];
    for (let at = bytes.indexOf(ID_PREFIX); at >= 0; at = bytes.indexOf(ID_PREFIX, at + 1)) idOffsets.push(at + ID_PREFIX.length - ID_TAG_LENGTH);
    return { bytes, idOffsets };
  });
}

/** Runs autocannon once for `durationS` against a running edge. */
function cannon(o: HttpBenchOptions, port: number, counter: { n: number; bytes: number }): Promise<autocannon.Result> {
  const templates = bodyTemplates(o.mode === 'batch' ? o.profile.batches : o.profile.beacons);
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
          const i = counter.n++ % templates.length;
          const template = templates[i] as { bytes: Buffer; idOffsets: number[] };
          // A fresh messageId prefix per request: every event is new to the edge's dedup set.
          // Written into the template itself: autocannon copies the body into the request it
          // builds right after this returns (buildRequest, synchronously), before the next call.
          const body = template.bytes;
          const tag = Buffer.from(`${counter.n.toString(36).padStart(ID_TAG_LENGTH - 1, '0')}-`, 'latin1');
          for (const at of template.idOffsets) tag.copy(body, at);
          req.body = body;
          counter.bytes += body.byteLength;
          req.headers = { ...base, 'cf-ipcountry': countries[i] as string };
          return req;
        },
      },
    ],
  });
}

/** Warm-up run, then `runs` measured runs against one server. */
export async function benchHttp(o: HttpBenchOptions, runs: number): Promise<HttpBenchResult> {
  // A fresh retry-dedup store per server (DEDUP_DIR, shared by its processes), removed after.
  const dedupDir = mkdtempSync(join(tmpdir(), 'tributary-bench-dedup-'));
  try {
    return await benchHttpIn(o, runs, dedupDir);
  } finally {
    rmSync(dedupDir, { recursive: true, force: true });
  }
}

async function benchHttpIn(o: HttpBenchOptions, runs: number, dedupDir: string): Promise<HttpBenchResult> {
  const server = await startServer(SERVERS[o.server ?? 'edge'], { DEDUP_DIR: dedupDir, ...o.env, EDGE_PROCESSES: String(o.processes ?? 1) });
  const counter = { n: 0, bytes: 0 };
  const perRequest = o.mode === 'batch' ? o.profile.events / o.profile.batches.length : 1;
  const results: autocannon.Result[] = [];
  let measuredCpuMs: number | undefined;
  let loadGeneratorCpuMs = 0;
  try {
    await cannon({ ...o, durationS: Math.min(3, o.durationS) }, server.port, counter);
    const cpuBefore = treeCpuMs(server.child.pid as number);
    const ownBefore = process.cpuUsage();
    for (let r = 0; r < runs; r++) results.push(await cannon(o, server.port, counter));
    const own = process.cpuUsage(ownBefore);
    const cpuAfter = treeCpuMs(server.child.pid as number);
    measuredCpuMs = cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : undefined;
    loadGeneratorCpuMs = (own.user + own.system) / 1000;
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
    measuredCpuMs,
    loadGeneratorCpuMs,
    measuredRequests: results.reduce((n, res) => n + res['2xx'], 0),
  };
}
