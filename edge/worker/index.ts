/**
 * Cloudflare Workers entry of the edge collector (ADR 0004, docs/DEPLOY-WORKERS.md).
 * The Worker parses, validates and pseudonymizes; Durable Object shards (`EdgeShard`) store the
 * events durably and send them to the gateway.
 */
import { createIngestState, type IngestState } from '../ingest.ts';
import type { EdgeLog } from '../ports.ts';
import { createStaticSaltProvider } from '../salt-provider.ts';
import { EdgeShard } from './edge-shard.ts';
import type { OverloadMemo } from './shard-committer.ts';
import { createWorkerRequestHandler, type ShardClient } from './worker-app.ts';
import { workerConfig } from './worker-config.ts';

export { EdgeShard };

const log: EdgeLog = (fields) => console.log(JSON.stringify({ component: 'edge-worker', ...fields }));
// Per isolate: a shard that said "overloaded" makes later requests fail fast until Retry-After.
const overload: OverloadMemo = { untilMs: 0 };
let reportedConfigErrors = false;
// Per isolate, built inside the first request (the clock is frozen at global scope): UA, path and
// pseudonym caches stay warm across requests instead of starting cold every time.
let ingestState: IngestState | undefined;

function shardClient(namespace: DurableObjectNamespace<EdgeShard>): ShardClient {
  return {
    ingest: (name, batch) => namespace.getByName(name).ingest(batch),
    stats: (name) => namespace.getByName(name).stats(),
  };
}

export default {
  async fetch(request, env, ctx) {
    const config = workerConfig(env);
    if (!config.ok) {
      if (!reportedConfigErrors) log({ event: 'edge_misconfigured', errors: config.errors });
      reportedConfigErrors = true;
      // The messages name variables, never secret values.
      return Response.json({ error: { code: 'misconfigured', message: `the edge is not configured: ${config.errors.join('; ')}` } }, { status: 500 });
    }
    const edge = config.config.edge;
    ingestState ??= createIngestState(
      edge,
      createStaticSaltProvider({ secret: edge.pseudonymSalt, epochMs: edge.saltEpochMs, retentionEpochs: edge.saltRetentionEpochs, now: () => Date.now() }),
    );
    const handler = createWorkerRequestHandler({ config: config.config, shards: shardClient(env.EDGE_SHARDS), overload, log, ingestState });
    const response = await handler.handle(request);
    // Beacons (/v1/collect) are answered 202 at once; their events reach the shards after the response.
    ctx.waitUntil(handler.background());
    return response;
  },
} satisfies ExportedHandler<Env>;
