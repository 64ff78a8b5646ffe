/**
 * Cloudflare Workers entry of the edge collector (ADR 0004, docs/DEPLOY-WORKERS.md).
 * The Worker parses, validates and pseudonymizes (epoch salts from the gateway by default,
 * `SALT_SOURCE`); Durable Object shards (`EdgeShard`) store the events durably and send them to
 * the gateway.
 */
import { createGatewaySaltProvider } from '../gateway-salt-provider.ts';
import { createIngestState, type IngestState } from '../ingest.ts';
import { NO_DEDUPLICATION } from '../pipeline/dedup.ts';
import type { EdgeLog } from '../ports.ts';
import { createStaticSaltProvider } from '../../shared/salts.ts';
import { EdgeShard } from './edge-shard.ts';
import type { OverloadMemo } from './shard-committer.ts';
import { createWorkerRequestHandler, type ShardClient } from './worker-app.ts';
import { workerConfig, workerNearMisses, type WorkerEdgeConfig } from './worker-config.ts';

export { EdgeShard };

const log: EdgeLog = (fields) => console.log(JSON.stringify({ component: 'edge-worker', ...fields }));
// Per isolate: a shard that said "overloaded" makes later requests fail fast until Retry-After.
const overload: OverloadMemo = { untilMs: 0 };
let reportedConfigErrors = false;
let reportedNearMisses = false;
/** What lives as long as the isolate: UA, path and pseudonym caches, and the salt provider's cache. */
interface IsolateState {
  ingest: IngestState;
  /** Starts fetching the next epoch's salt near the rollover (gateway salts only). */
  prefetchSalt: () => Promise<void> | undefined;
}
// Built inside the first request (the clock is frozen at global scope), one per `env` object:
// caches stay warm across requests instead of starting cold every time.
const isolates = new WeakMap<object, IsolateState>();

function isolateState(env: object, config: WorkerEdgeConfig): IsolateState {
  let state = isolates.get(env);
  if (state === undefined) {
    const edge = config.edge;
    const now = (): number => Date.now();
    if (config.saltSource === 'gateway') {
      const salts = createGatewaySaltProvider({ gateway: config.gateway, epochMs: edge.saltEpochMs, retentionEpochs: edge.saltRetentionEpochs, now, log });
      state = { ingest: createIngestState(edge, salts, { dedup: NO_DEDUPLICATION }), prefetchSalt: () => salts.prefetch() };
    } else {
      const salts = createStaticSaltProvider({ secret: edge.pseudonymSalt, epochMs: edge.saltEpochMs, retentionEpochs: edge.saltRetentionEpochs, now });
      state = { ingest: createIngestState(edge, salts, { dedup: NO_DEDUPLICATION }), prefetchSalt: () => undefined };
    }
    isolates.set(env, state);
  }
  return state;
}

function shardClient(namespace: DurableObjectNamespace<EdgeShard>): ShardClient {
  return {
    ingest: (name, batch) => namespace.getByName(name).ingest(batch),
    stats: (name) => namespace.getByName(name).stats(),
  };
}

export default {
  async fetch(request, env, ctx) {
    const config = workerConfig(env);
    if (!reportedNearMisses) for (const warning of workerNearMisses(env)) log({ level: 'warn', ...warning });
    reportedNearMisses = true;
    if (!config.ok) {
      if (!reportedConfigErrors) log({ event: 'edge_misconfigured', errors: config.errors });
      reportedConfigErrors = true;
      // Details go to the Worker's log only: the answer reaches anyone on the internet.
      return Response.json({ error: { code: 'misconfigured', message: 'the edge is not configured: the operator finds the reasons in the Worker log (event edge_misconfigured)' } }, { status: 500 });
    }
    const isolate = isolateState(env, config.config);
    // Near an epoch's end the next salt is fetched in the background; waitUntil keeps the fetch
    // alive after this response, so the first request of the new epoch finds it cached.
    const prefetch = isolate.prefetchSalt();
    if (prefetch !== undefined) ctx.waitUntil(prefetch);
    const handler = createWorkerRequestHandler({ config: config.config, shards: shardClient(env.EDGE_SHARDS), overload, log, ingestState: isolate.ingest });
    const response = await handler.handle(request);
    // Beacons (/v1/collect) are answered 202 at once; their events reach the shards after the response.
    ctx.waitUntil(handler.background());
    return response;
  },
} satisfies ExportedHandler<Env>;
