import cluster, { type Worker } from 'node:cluster';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { jitteredBackoffMs } from '../../shared/backoff.ts';
import type { EdgeLog } from '../ports.ts';
import { isFromWorker, type FromWorker, type NodeEdgeHealth, type ToWorker, type WorkerStartOptions } from './cluster-protocol.ts';
import { defaultLog, defaultSourceId } from './defaults.ts';
import type { NodeEdgeOptions, RunningNodeEdge } from './options.ts';
import { errorMessage } from '../../shared/errors.ts';

export type { NodeEdgeHealth } from './cluster-protocol.ts';

const WORKER_ENTRY = fileURLToPath(new URL('./cluster-worker.ts', import.meta.url));
/** A worker that dies on its own is replaced after 1–2 times this delay (no tight crash loop). */
const RESTART_DELAY_MS = 1000;
/**
 * A replacement that fails to start (e.g. Kafka is down, so its producer cannot connect) is
 * tried again and again, the delay doubling (with jitter) up to this, until it starts or the
 * cluster closes: the cluster never stays a process short.
 */
const RESTART_MAX_DELAY_MS = 30_000;

/**
 * `startNodeEdge` with `processes > 1` (`EDGE_PROCESSES`): N edge processes on one port through
 * node:cluster (the primary accepts connections and hands them to the workers in turn), for
 * hosts where one process's CPU is the limit. This process only supervises: it forks the
 * workers, replaces one that dies, and on `close()` lets each close gracefully (in-flight
 * requests answered, last flush sent).
 *
 * Each worker is a complete, independent edge, which is what keeps the pipeline's guarantees:
 * - its own source id `<sourceId>-<n>`, Kafka producer and sequence numbers, so the
 *   aggregator keeps one watermark per worker (a replaced worker takes a new id,
 *   `<sourceId>-<n>.<k>`, so its sequences never collide with those of the dead one, whose
 *   journaled envelopes another process may still re-send);
 * - one retry dedup store for all of them (`DEDUP_DIR`, on disk, edge/node/dedup-store.ts): a
 *   client retry that lands on another worker, or on the replacement of a crashed one, is
 *   recognized (docs/EDGE.md "Deduplication", ADR 0010);
 * - its own `/health`: `GET /health` answers for the worker that got the connection;
 *   `health()` here collects every worker's.
 *
 * @example
 * ```ts
 * const edge = await startNodeEdge({ config, brokers, port: 8080, processes: 2 });
 * console.log(await edge.health()); // one entry per worker
 * await edge.close();
 * ```
 */
export async function startNodeEdgeCluster(o: NodeEdgeOptions): Promise<RunningNodeEdge> {
  const processes = o.processes ?? 1;
  if (!Number.isInteger(processes) || processes < 2) throw new Error(`startNodeEdgeCluster needs processes >= 2, got ${processes}`);
  if (o.sink !== undefined || o.saltProvider !== undefined) {
    throw new Error('with more than one edge process, sink and saltProvider cannot be passed to the workers: build them in a workerSetup module (see NodeEdgeWorkerSetup)');
  }
  if (!cluster.isPrimary) throw new Error('a multi-process edge must be started from the primary process');
  const base = o.sourceId ?? defaultSourceId();
  const log: EdgeLog = o.log ?? defaultLog;
  const options = workerStartOptions(o);
  cluster.setupPrimary({ exec: WORKER_ENTRY, execArgv: workerExecArgv() });

  const workers = new Map<number, Worker>();
  /** Workers that reached `listening`; the others are still starting (close kills them, see closeAll). */
  const serving = new WeakSet<Worker>();
  /** Replacements waiting for their delay; cleared on close. */
  const pendingReplacements = new Set<NodeJS.Timeout>();
  let closing = false;
  let healthId = 0;

  const incarnations = new Map<number, number>();

  /** Forks the worker of slot `index`; resolves with its port once it listens. */
  function fork(index: number): Promise<number> {
    // A replacement never reuses its predecessor's source id (`<base>-<n>`, then `<base>-<n>.2`,
    // ...): the flush journal re-sends a dead worker's envelopes under its id and sequences, which
    // is exact only if nothing else is ever sent under that id (ADR 0010, "The flush journal").
    const incarnation = (incarnations.get(index) ?? 0) + 1;
    incarnations.set(index, incarnation);
    const sourceId = incarnation === 1 ? `${base}-${index}` : `${base}-${index}.${incarnation}`;
    const worker = cluster.fork();
    workers.set(index, worker);
    return new Promise<number>((resolve, reject) => {
      let listening = false;
      worker.on('message', (m: unknown) => {
        if (!isFromWorker(m)) return;
        if (m.type === 'tributary-edge:ready') {
          send(worker, { type: 'tributary-edge:start', index, sourceId, options });
        } else if (m.type === 'tributary-edge:listening') {
          listening = true;
          serving.add(worker);
          resolve(m.port);
        } else if (m.type === 'tributary-edge:failed') {
          reject(new Error(`edge worker ${sourceId} failed to start: ${m.error}`));
        }
      });
      worker.once('exit', (code, signal) => {
        if (workers.get(index) === worker) workers.delete(index);
        if (!listening) {
          reject(new Error(`edge worker ${sourceId} exited before listening (code ${code}, signal ${signal})`));
          return;
        }
        if (closing) return;
        log({ event: 'edge_worker_exited', source_id: sourceId, code, signal });
        replace(index, 1);
      });
    });
  }

  /** Starts a replacement for slot `index` after a delay, and again after every failed start, until one listens or the cluster closes. */
  function replace(index: number, attempt: number): void {
    const sourceId = `${base}-${index}`;
    const timer = setTimeout(() => {
      pendingReplacements.delete(timer);
      if (closing) return;
      fork(index).then(
        () => log({ event: 'edge_worker_replaced', source_id: sourceId, attempts: attempt }),
        (e: unknown) => {
          if (closing) return;
          log({ event: 'edge_worker_restart_failed', source_id: sourceId, attempt, error: errorMessage(e), then: 'retried with backoff until it starts' });
          replace(index, attempt + 1);
        },
      );
    }, jitteredBackoffMs(attempt, RESTART_DELAY_MS * 2, RESTART_MAX_DELAY_MS));
    timer.unref();
    pendingReplacements.add(timer);
  }

  async function closeAll(): Promise<void> {
    closing = true;
    for (const timer of pendingReplacements) clearTimeout(timer);
    pendingReplacements.clear();
    await Promise.all(
      [...workers.values()].map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            w.once('exit', () => resolve());
            send(w, { type: 'tributary-edge:close' });
            // A replacement still starting has nothing to flush, and may not listen for messages
            // yet (those are lost): it is ended by signal.
            if (!serving.has(w)) w.process.kill('SIGTERM');
          }),
      ),
    );
  }

  let port: number;
  try {
    const ports = await Promise.all(Array.from({ length: processes }, (_, i) => fork(i + 1)));
    port = ports[0] as number;
  } catch (e) {
    await closeAll();
    throw e;
  }
  const host = o.hostname && o.hostname !== '0.0.0.0' && o.hostname !== '::' ? o.hostname : '127.0.0.1';
  log({ event: 'edge_cluster_started', source_id: base, processes, port });

  let closed: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    sourceId: base,
    health() {
      return Promise.all([...workers.values()].map((w) => askHealth(w, ++healthId)));
    },
    close() {
      closed ??= closeAll();
      return closed;
    },
  };
}

function askHealth(worker: Worker, id: number): Promise<NodeEdgeHealth> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown): void => {
      if (isFromWorker(m) && m.type === 'tributary-edge:health' && m.id === id) {
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        resolve((m as Extract<FromWorker, { type: 'tributary-edge:health' }>).health);
      }
    };
    const onExit = (): void => {
      worker.off('message', onMessage);
      reject(new Error('the edge worker exited before reporting its health'));
    };
    worker.on('message', onMessage);
    worker.once('exit', onExit);
    send(worker, { type: 'tributary-edge:health', id });
  });
}

function send(worker: Worker, message: ToWorker): void {
  if (worker.isConnected()) worker.send(message);
}

/**
 * The workers run this package's TypeScript sources, so they need tsx's loader: inherited when
 * the primary was started with `--import tsx`, added otherwise (`tributary` registers tsx from
 * its bin script, which the workers do not run).
 */
function workerExecArgv(): string[] {
  if (process.execArgv.some((a) => a.includes('tsx'))) return process.execArgv;
  return [...process.execArgv, '--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href];
}

/** What every worker of the cluster is started with (sent over IPC; see {@link WorkerStartOptions}). */
export function workerStartOptions(o: NodeEdgeOptions): WorkerStartOptions {
  return {
    config: o.config,
    brokers: o.brokers,
    ...(o.kafkaSecurity !== undefined ? { kafkaSecurity: o.kafkaSecurity } : {}),
    port: o.port,
    ...(o.hostname !== undefined ? { hostname: o.hostname } : {}),
    ...(o.topics !== undefined ? { topics: o.topics } : {}),
    ...(o.workerSetup !== undefined ? { workerSetup: o.workerSetup } : {}),
    ...(o.closeDeadlineMs !== undefined ? { closeDeadlineMs: o.closeDeadlineMs } : {}),
  };
}
