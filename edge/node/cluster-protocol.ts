/** Messages between the cluster primary (cluster.ts) and its edge workers (cluster-worker.ts), over node:cluster IPC. */
import type { EdgeConfig } from '../config.ts';
import type { KafkaSecurity } from '../../core/config/kafka-security.ts';

/** What a worker needs to start its edge: everything here crosses IPC as JSON. */
export interface WorkerStartOptions {
  config: EdgeConfig;
  brokers: string[];
  /** Holds the SASL password: sent to the worker over the IPC channel only, never logged. */
  kafkaSecurity?: KafkaSecurity;
  port: number;
  hostname?: string;
  topics?: { partials?: string; rejected?: string };
  workerSetup?: string;
  /** A worker still closing this long after its close began exits anyway (see NodeEdgeOptions.closeDeadlineMs). */
  closeDeadlineMs?: number;
}

/** `/health` of one process: status and body as `GET /health` answers them there. */
export interface NodeEdgeHealth {
  sourceId: string;
  status: number;
  body: Record<string, unknown>;
}

export type ToWorker =
  | { type: 'tributary-edge:start'; index: number; sourceId: string; options: WorkerStartOptions }
  | { type: 'tributary-edge:health'; id: number }
  | { type: 'tributary-edge:close' };

export type FromWorker =
  /** The worker listens for messages (IPC messages sent before that are lost). */
  | { type: 'tributary-edge:ready' }
  | { type: 'tributary-edge:listening'; port: number }
  | { type: 'tributary-edge:failed'; error: string }
  | { type: 'tributary-edge:health'; id: number; health: NodeEdgeHealth };

const PREFIX = 'tributary-edge:';
const tagged = (m: unknown): boolean => typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith(PREFIX);

/** A message of this protocol (the IPC channel also carries node:cluster's own). */
export function isFromWorker(m: unknown): m is FromWorker {
  return tagged(m);
}

export function isToWorker(m: unknown): m is ToWorker {
  return tagged(m);
}
