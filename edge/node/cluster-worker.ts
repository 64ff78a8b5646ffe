/**
 * Entry of one edge worker process of a multi-process Node edge (cluster.ts). Waits for its
 * start message, runs `startNodeEdge` with the slot's source id on the shared port, answers
 * health requests, and closes gracefully (in-flight requests answered, last flush sent) on the
 * primary's close message, on SIGTERM/SIGINT, or when the primary goes away.
 */
import { isToWorker, type FromWorker, type ToWorker } from './cluster-protocol.ts';
import { defaultLog } from './defaults.ts';
import type { NodeEdgeWorkerExtras, NodeEdgeWorkerSetup, RunningNodeEdge } from './options.ts';
import { startNodeEdge } from './server.ts';
import { errorMessage } from '../../shared/errors.ts';

let edge: RunningNodeEdge | undefined;
let extras: NodeEdgeWorkerExtras = {};
let stopping: Promise<void> | undefined;
let closeDeadlineMs = 10_000;

function tell(message: FromWorker): void {
  if (process.connected) process.send?.(message);
}

async function start(m: Extract<ToWorker, { type: 'tributary-edge:start' }>): Promise<void> {
  try {
    if (m.options.workerSetup !== undefined) {
      const url = /^[a-z]+:/i.test(m.options.workerSetup) ? m.options.workerSetup : new URL(m.options.workerSetup, `file://${process.cwd()}/`).href;
      const setup = (await import(url)) as { nodeEdgeWorker?: NodeEdgeWorkerSetup };
      if (typeof setup.nodeEdgeWorker !== 'function') throw new Error(`${m.options.workerSetup} does not export a nodeEdgeWorker function`);
      extras = await setup.nodeEdgeWorker({ index: m.index, sourceId: m.sourceId });
    }
    closeDeadlineMs = m.options.closeDeadlineMs ?? closeDeadlineMs;
    // JSON over IPC lost the null prototype of the write-key map (looked up with Object.hasOwn anyway).
    const config = { ...m.options.config, writeKeys: Object.assign(Object.create(null) as Record<string, string>, m.options.config.writeKeys) };
    edge = await startNodeEdge({
      ...m.options,
      config,
      sourceId: m.sourceId,
      log: extras.log ?? ((fields) => defaultLog({ source_id: m.sourceId, ...fields })),
      ...(extras.sink ? { sink: extras.sink } : {}),
      ...(extras.saltProvider ? { saltProvider: extras.saltProvider } : {}),
    });
    tell({ type: 'tributary-edge:listening', port: Number(new URL(edge.url).port) });
  } catch (e) {
    tell({ type: 'tributary-edge:failed', error: errorMessage(e) });
    process.exit(1);
  }
}

function stop(): Promise<void> {
  stopping ??= (async () => {
    // A close that hangs (the final flush to an unreachable broker) must not leave an orphan
    // process behind once the primary has gone.
    setTimeout(() => {
      defaultLog({ event: 'edge_close_deadline_exceeded', deadline_ms: closeDeadlineMs, still_open: ['edge'] });
      process.exit(1);
    }, closeDeadlineMs).unref();
    await edge?.close();
    await extras.afterClose?.();
    process.exit(0);
  })();
  return stopping;
}

process.on('message', (m: unknown) => {
  if (!isToWorker(m)) return;
  if (m.type === 'tributary-edge:start') void start(m);
  else if (m.type === 'tributary-edge:close') void stop();
  else if (m.type === 'tributary-edge:health' && edge !== undefined) {
    const id = m.id;
    void edge.health().then(([health]) => {
      if (health !== undefined) tell({ type: 'tributary-edge:health', id, health });
    });
  }
});
// Ctrl-C reaches the whole process group: close like on the primary's request, not abruptly.
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
process.on('disconnect', () => void stop());
tell({ type: 'tributary-edge:ready' });
