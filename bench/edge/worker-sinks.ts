/**
 * `workerSetup` module of the multi-process benchmark edge (http-server.ts with
 * EDGE_PROCESSES > 1): in-memory sinks in each worker process, whose stats the worker sends to
 * the primary over IPC once its edge has closed (last flush done).
 */
import type { NodeEdgeWorkerSetup } from '../../edge/node/server.ts';
import { createMemorySink, type SinkStats } from './sink.ts';

/** The IPC message a benchmark worker sends its primary when it has closed. */
export interface WorkerSinkStatsMessage {
  type: 'bench:sink-stats';
  stats: SinkStats;
}

export const nodeEdgeWorker: NodeEdgeWorkerSetup = () => {
  const memory = createMemorySink();
  return {
    sink: memory.sink,
    afterClose: () =>
      new Promise<void>((resolve) => {
        const message: WorkerSinkStatsMessage = { type: 'bench:sink-stats', stats: memory.stats() };
        if (process.send === undefined) return resolve();
        process.send(message, undefined, undefined, () => resolve());
      }),
  };
};
