/**
 * Deno entry of the edge collector: the same runtime-neutral app (createEdge) served with
 * `Deno.serve`, flushing with the in-memory group-commit flusher to the gateway
 * (core/gateway) over signed HTTPS, like the Workers shards do. Configuration is the edge's
 * (docs/EDGE.md) plus `GATEWAY_URL`, `EDGE_ID` (default `deno`) and `GATEWAY_SIGNING_KEY`;
 * `SALT_SOURCE` (`gateway`, the default: epoch salts from the gateway's central store, or
 * `static`: derived from `PSEUDONYM_SALT`); `PORT` (default 8080, 0 = any free port) and
 * `HOSTNAME` (default 0.0.0.0). Request bodies are bounded by `BODY_TIMEOUT_MS` (else `408
 * body_timeout`), `MAX_CONNECTIONS` bodies being read at once and `MAX_INFLIGHT_BODY_BYTES` held
 * at once (else `503 overloaded`); the headers timeout is Deno.serve's own.
 *
 * Run (from the repository root, after `npm ci`):
 *   npx deno run --allow-net --allow-env --allow-read edge/deno/main.ts
 *
 * On start it prints one JSON line `{"event":"edge_started","url":...,"source_id":...}`.
 * Durability is the Node edge's: a 2xx means the gateway had the envelope in Kafka; rows of a
 * process that dies before its flush are lost with it, and those requests were not answered 2xx.
 * Retries are deduplicated in memory, per process (the last `DEDUP_CAPACITY` messageIds): a
 * retry after a restart, or on another Deno process, counts again (docs/EDGE.md "Deduplication").
 */
import { createBodyLimiter } from '../body/body-limits.ts';
import { parseEdgeConfig } from '../config.ts';
import { createEdge } from '../edge.ts';
import { createGatewayClient, createGatewaySink } from '../gateway-client.ts';
import { parseGatewayClientConfig } from '../gateway-config.ts';
import { createGatewaySaltProvider } from '../gateway-salt-provider.ts';
import type { EdgeLog } from '../ports.ts';
import { parseSaltSource } from '../salt-source.ts';
import { SETTINGS, nearMissWarnings, readText, readWhole } from '../../shared/config/index.ts';
import { denoSourceId } from '../../schemas/gateway-sources.ts';
import { errorMessage } from '../../shared/errors.ts';

/** The slice of the `Deno` global this entry uses (typed here so the Node toolchain checks the file too). */
interface DenoRuntime {
  env: { toObject(): Record<string, string> };
  serve(
    options: { port: number; hostname: string; onListen?: (addr: { hostname: string; port: number }) => void },
    handler: (request: Request) => Response | Promise<Response>,
  ): { finished: Promise<void>; shutdown(): Promise<void> };
  addSignalListener(signal: 'SIGINT' | 'SIGTERM', handler: () => void): void;
  exit(code: number): never;
}

// Annotated: TypeScript only treats `Deno.exit` as ending control flow on an explicitly typed const.
const Deno: DenoRuntime = (globalThis as unknown as { Deno: DenoRuntime }).Deno;
const log: EdgeLog = (fields) => console.log(JSON.stringify({ time: new Date().toISOString(), component: 'edge-deno', ...fields }));

function fail(errors: string[]): never {
  console.error(`Configuration is not valid:\n  - ${errors.join('\n  - ')}`);
  Deno.exit(2);
}

const env = Deno.env.toObject();
// A misspelt setting (WINDOW_SIZE for WINDOW_SIZE_MS) is otherwise ignored without a word: said once, names only.
for (const warning of nearMissWarnings(env)) log({ level: 'warn', ...warning });
const saltSource = parseSaltSource(env, { supported: ['gateway', 'static'], fallback: 'gateway' });
if (!saltSource.ok) fail([saltSource.error]);
const edgeConfig = parseEdgeConfig(env, { pseudonymSaltRequired: saltSource.source === 'static' });
if (!edgeConfig.ok) fail(edgeConfig.errors);
const gatewayConfig = parseGatewayClientConfig(env, { defaultEdgeId: 'deno' });
if (!gatewayConfig.ok) fail(gatewayConfig.errors);
const listenErrors: string[] = [];
const port = readWhole(env, SETTINGS.PORT, listenErrors);
const hostname = readText(env, SETTINGS.HOSTNAME, listenErrors) ?? '0.0.0.0';
if (listenErrors.length > 0) fail(listenErrors);

// A fresh source per process, so sequences of two runs never collide (as on Node).
const random = crypto.getRandomValues(new Uint8Array(4)).reduce((s, b) => s + b.toString(16).padStart(2, '0'), '');
// The form the gateway accepts from this edge's key only (schemas/gateway-sources.ts).
const sourceId = denoSourceId(gatewayConfig.config.edgeId, random);
const sink = createGatewaySink(createGatewayClient(gatewayConfig.config));
const salts =
  saltSource.source === 'gateway'
    ? createGatewaySaltProvider({ gateway: gatewayConfig.config, epochMs: edgeConfig.config.saltEpochMs, retentionEpochs: edgeConfig.config.saltRetentionEpochs, log })
    : undefined;
// Deno.serve bounds neither slow bodies nor concurrent uploads: BODY_TIMEOUT_MS, MAX_CONNECTIONS
// (bodies being read at once) and MAX_INFLIGHT_BODY_BYTES are enforced here (docs/EDGE.md "Limits").
const bodyLimiter = createBodyLimiter(edgeConfig.config);
const edge = createEdge({ config: edgeConfig.config, sourceId, sink, log, bodyLimiter, ...(salts ? { saltProvider: salts } : {}) });
const timer = setInterval(() => {
  edge.flusher.tick().catch((e: unknown) => log({ event: 'flush_crashed', error: errorMessage(e) }));
  // Fetches the next epoch's salt shortly before the rollover (a no-op the rest of the time).
  void salts?.prefetch();
}, edgeConfig.config.flushIntervalMs);

const server = Deno.serve(
  {
    port,
    hostname,
    onListen: (addr) => log({ event: 'edge_started', url: `http://${addr.hostname === '0.0.0.0' ? '127.0.0.1' : addr.hostname}:${addr.port}`, source_id: sourceId, salt_source: saltSource.source }),
  },
  (request) => edge.app.fetch(request),
);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  // Stop accepting, let waiting requests get their group commit, then flush what is left.
  await server.shutdown();
  clearInterval(timer);
  const last = await edge.flusher.close();
  if (!last.ok) log({ event: 'final_flush_failed', pending_envelopes: last.pendingEnvelopes, error: last.error });
  Deno.exit(0);
}
Deno.addSignalListener('SIGINT', () => void stop());
Deno.addSignalListener('SIGTERM', () => void stop());
