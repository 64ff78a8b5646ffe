import { parseEdgeConfig, type EdgeConfig } from '../config.ts';
import type { GatewayClientConfig } from '../gateway-client.ts';
import { parseGatewayClientConfig } from '../gateway-config.ts';
import { parseSaltSource } from '../salt-source.ts';
import { SETTINGS, nearMissWarnings, readWhole } from '../../shared/config/index.ts';

/** Everything the Worker and its Durable Object shards read from wrangler vars and secrets. */
export interface WorkerEdgeConfig {
  edge: EdgeConfig;
  gateway: GatewayClientConfig;
  /**
   * `SALT_SOURCE`: `gateway` (default: the Worker always has a gateway, and its salts are the
   * central store's, the same as the Node edges') or `static` (derived from `PSEUDONYM_SALT`).
   */
  saltSource: 'gateway' | 'static';
  /** Durable Object shards events are spread over (`DO_SHARDS`). */
  shards: number;
  /**
   * How long a shard keeps sending heartbeats after its last event (`HEARTBEAT_TAIL_MS`), so the
   * windows it contributed to close promptly; after that it sleeps (no alarms, no cost) and the
   * aggregator treats it as idle.
   */
  heartbeatTailMs: number;
}

export type WorkerConfigResult = { ok: true; config: WorkerEdgeConfig } | { ok: false; errors: string[] };

const cache = new WeakMap<object, WorkerConfigResult>();

/**
 * Parses the Worker's bindings (vars + secrets; other bindings are ignored) once per `env`
 * object. Changing `DO_SHARDS` re-routes events to other shards: do it only with the gateway up
 * (see docs/DEPLOY-WORKERS.md), since deduplication by messageId is per shard.
 *
 * @example
 * ```ts
 * const r = workerConfig(env);
 * if (!r.ok) return new Response(r.errors.join('\n'), { status: 500 });
 * ```
 */
export function workerConfig(env: object): WorkerConfigResult {
  let result = cache.get(env);
  if (result === undefined) {
    result = parseWorkerConfig(stringBindings(env));
    cache.set(env, result);
  }
  return result;
}

/** Vars that look like a misspelt setting (`WINDOW_SIZE`), for one warning each per isolate; names only, never values. */
export function workerNearMisses(env: object): ReturnType<typeof nearMissWarnings> {
  return nearMissWarnings(stringBindings(env));
}

/** The pure parser behind {@link workerConfig}. */
export function parseWorkerConfig(vars: Record<string, string | undefined>): WorkerConfigResult {
  const salts = parseSaltSource(vars, { supported: ['gateway', 'static'], fallback: 'gateway' });
  const saltSource = salts.ok && salts.source === 'static' ? 'static' : 'gateway';
  const edge = parseEdgeConfig(vars, { pseudonymSaltRequired: saltSource === 'static' });
  const gateway = parseGatewayClientConfig(vars, { defaultEdgeId: 'workers' });
  const errors = [...(salts.ok ? [] : [salts.error]), ...(edge.ok ? [] : edge.errors), ...(gateway.ok ? [] : gateway.errors)];
  const shards = readWhole(vars, SETTINGS.DO_SHARDS, errors);
  const windowSizeMs = edge.ok ? edge.config.windowSizeMs : SETTINGS.WINDOW_SIZE_MS.default;
  const heartbeatTailMs = readWhole(vars, SETTINGS.HEARTBEAT_TAIL_MS, errors, { fallback: 2 * windowSizeMs });
  if (!edge.ok || !gateway.ok || errors.length > 0) return { ok: false, errors };
  return { ok: true, config: { edge: edge.config, gateway: gateway.config, saltSource, shards, heartbeatTailMs } };
}

function stringBindings(env: object): Record<string, string | undefined> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (typeof value === 'string') out[name] = value;
  return out;
}
