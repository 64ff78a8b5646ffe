import { createEdgeApp } from '../app.ts';
import type { IngestState } from '../ingest.ts';
import { NO_DEDUPLICATION } from '../pipeline/dedup.ts';
import type { EdgeLog } from '../ports.ts';
import { workersCountry } from './country.ts';
import { createEventCapture } from './event-capture.ts';
import { createShardCommitter, type OverloadMemo } from './shard-committer.ts';
import type { ShardBatch, ShardIngestResult, ShardStats } from './shard-protocol.ts';
import { shardName } from './shard-routing.ts';
import type { WorkerEdgeConfig } from './worker-config.ts';
import { errorMessage } from '../../shared/errors.ts';

/** What the Worker needs of its Durable Object namespace (the RPC methods of `EdgeShard`). */
export interface ShardClient {
  ingest(name: string, batch: ShardBatch): Promise<ShardIngestResult>;
  stats(name: string): Promise<ShardStats>;
}

export interface WorkerRequestHandler {
  /** Answers one request; beacon events still in flight are returned as `background`. */
  handle(request: Request): Promise<Response>;
  /** Sends what the response did not wait for (beacons); pass to `ctx.waitUntil`. */
  background(): Promise<unknown>;
}

/**
 * One request on the Workers edge: the runtime-neutral edge app (createEdgeApp) with a
 * per-request accumulator and a {@link createShardCommitter} flusher, so `/v1/batch|track|page|
 * screen|identify` answer 200 only after every shard holding their events has them in storage.
 * `GET /health` is answered here from the shards' own stats. Built per request on purpose:
 * Workers freeze the clock at global scope and share isolates between unrelated requests.
 */
export function createWorkerRequestHandler(o: {
  config: WorkerEdgeConfig;
  shards: ShardClient;
  overload: OverloadMemo;
  log?: EdgeLog;
  /** Caches (UA, path, pseudonyms), dedup and counters kept per isolate; default: fresh per request. */
  ingestState?: IngestState;
}): WorkerRequestHandler {
  const { edge, gateway, shards } = o.config;
  const capture = createEventCapture({ windowSizeMs: edge.windowSizeMs, cardinalityCap: edge.cardinalityCap });
  const committer = createShardCommitter({
    capture,
    shards,
    edgeId: gateway.edgeId,
    ingest: (index, batch) => o.shards.ingest(shardName(gateway.edgeId, index), batch),
    overload: o.overload,
    now: Date.now,
    retryAfterS: Math.max(1, Math.ceil(edge.flushIntervalMs / 1000)),
    ...(o.log ? { log: o.log } : {}),
  });
  const app = createEdgeApp({
    config: edge,
    accumulator: capture,
    flusher: committer,
    ...(o.ingestState ? { ingestState: o.ingestState } : {}),
    // The shards deduplicate, atomically with storing (an isolate's memory would mark events a
    // failing shard never stored, and a retry would then be dropped: lost).
    dedup: NO_DEDUPLICATION,
    country: workersCountry(edge.countryHeader),
    ...(o.log ? { log: o.log } : {}),
  });

  async function health(): Promise<Response> {
    const names = Array.from({ length: shards }, (_, i) => shardName(gateway.edgeId, i));
    const stats = await Promise.all(names.map((name) => o.shards.stats(name).catch((e: unknown) => ({ shard: name, error: errorMessage(e) }))));
    const healthy = stats.every((s) => !('error' in s) && !s.overloaded);
    return Response.json({ ok: healthy, runtime: 'workerd', edgeId: gateway.edgeId, shards: stats }, { status: healthy ? 200 : 503 });
  }

  return {
    handle(request) {
      const url = new URL(request.url);
      if (request.method === 'GET' && url.pathname === '/health') return health();
      return Promise.resolve(app.fetch(request));
    },
    background: () => committer.flushNow(),
  };
}
