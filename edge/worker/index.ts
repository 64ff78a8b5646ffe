/**
 * Cloudflare Workers entry of the edge collector (ADR 0004, docs/DEPLOY-WORKERS.md).
 * The Worker parses, validates and pseudonymizes; Durable Object shards (`EdgeShard`) store the
 * events durably and send them to the gateway.
 */
import type { EdgeLog } from '../ports.ts';
import { EdgeShard } from './edge-shard.ts';
import type { OverloadMemo } from './shard-committer.ts';
import { createWorkerRequestHandler, type ShardClient } from './worker-app.ts';
import { workerConfig } from './worker-config.ts';

export { EdgeShard };

const log: EdgeLog = (fields) => console.log(JSON.stringify({ component: 'edge-worker', ...fields }));
// Per isolate: a shard that said "overloaded" makes later requests fail fast until Retry-After.
const overload: OverloadMemo = { untilMs: 0 };
let reportedConfigErrors = false;

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
    const handler = createWorkerRequestHandler({ config: config.config, shards: shardClient(env.EDGE_SHARDS), overload, log });
    const response = await handler.handle(request);
    // Beacons (/v1/collect) are answered 202 at once; their events reach the shards after the response.
    ctx.waitUntil(handler.background());
    return response;
  },
} satisfies ExportedHandler<Env>;
