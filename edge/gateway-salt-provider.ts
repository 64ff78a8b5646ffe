import { saltRequestBody, signGatewayRequest } from '../schemas/gateway-signature.ts';
import type { GatewayClientConfig } from './gateway-client.ts';
import type { EdgeLog } from './ports.ts';
import { saltEpoch, saltUsableUntil, type SaltLookup, type SaltProvider } from '../shared/salts.ts';
import { errorMessage } from '../shared/errors.ts';

export interface GatewaySaltProviderOptions {
  /** The gateway the edge already forwards to, and its key there (edge/gateway-config.ts). */
  gateway: GatewayClientConfig;
  /** The edge's `SALT_EPOCH_MS`: sent with every request; the gateway answers 409 when its own differs. */
  epochMs: number;
  /**
   * The edge's `SALT_RETENTION_EPOCHS`: epochs past it (or more than one epoch ahead) are answered
   * `expired` without asking, so old or forged event times cannot make the edge fetch salts it
   * would refuse anyway. The gateway's own retention applies on top (its `usableUntilMs`).
   */
  retentionEpochs: number;
  /** Default: the global `fetch`, looked up per call (so a test can stub it). */
  fetch?: (request: Request) => Promise<Response>;
  now?: () => number;
  /** Per request. Default 5 s. */
  timeoutMs?: number;
  /** The next epoch's salt is fetched this long before the current epoch ends. Default min(10 min, epochMs / 10). */
  prefetchMarginMs?: number;
  /** After a failed fetch the gateway is not asked again for this long, doubling per failure up to `maxBackoffMs` (and at least its Retry-After). Defaults 1 s and 30 s. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Epoch salts kept in memory. Default 4 (yesterday, today, tomorrow and a spare with daily epochs). */
  maxEpochs?: number;
  log?: EdgeLog;
}

/** A {@link SaltProvider} that also fetches the next epoch's salt ahead of the rollover. */
export interface GatewaySaltProvider extends SaltProvider {
  /**
   * When the current epoch ends within the prefetch margin and the next epoch's salt is neither
   * cached nor being fetched, starts fetching it and returns that fetch (it never rejects);
   * otherwise undefined. Cheap enough to call on every request: on Workers pass the promise to
   * `ctx.waitUntil`, so the fetch outlives the request that started it.
   */
  prefetch(): Promise<void> | undefined;
}

const EXPIRED: SaltLookup = Object.freeze({ kind: 'expired' });
const SALT_BYTES = 32;

/**
 * Epoch salts served by `tributary gateway` (`GET /v1/salts/{epoch}`, signed like the other
 * gateway calls), for edges that cannot reach the central store themselves: Workers and Deno.
 * Web-standard APIs only.
 *
 * - A salt is cached per epoch until its `usableUntilMs`; at most `maxEpochs` are kept.
 * - Concurrent lookups of one epoch share one request.
 * - The next epoch's salt is fetched shortly before the rollover (see {@link GatewaySaltProvider.prefetch}),
 *   so the first events of a new epoch do not wait for the gateway.
 * - Network errors, timeouts and non-410 refusals (5xx, 401, 409 ...) answer `unavailable` and
 *   start a backoff during which the gateway is not asked at all: a dead gateway costs one
 *   request per backoff period, not one per ingest request. A 410 answers `expired`.
 * - Salt bytes are never logged; log lines carry the epoch and the gateway's error only.
 *
 * @example
 * ```ts
 * const salts = createGatewaySaltProvider({ gateway: gatewayConfig, epochMs: config.saltEpochMs, retentionEpochs: config.saltRetentionEpochs });
 * const edge = createEdge({ config, sourceId, ...sinks, saltProvider: salts });
 * ```
 */
export function createGatewaySaltProvider(o: GatewaySaltProviderOptions): GatewaySaltProvider {
  const base = o.gateway.url.replace(/\/+$/, '');
  const now = o.now ?? Date.now;
  const doFetch = o.fetch ?? ((request: Request) => fetch(request));
  const timeoutMs = o.timeoutMs ?? 5000;
  const marginMs = o.prefetchMarginMs ?? Math.min(600_000, Math.floor(o.epochMs / 10));
  const minBackoffMs = o.minBackoffMs ?? 1000;
  const maxBackoffMs = Math.max(minBackoffMs, o.maxBackoffMs ?? 30_000);
  const maxEpochs = Math.max(1, o.maxEpochs ?? 4);
  const log: EdgeLog = o.log ?? (() => undefined);

  const cache = new Map<number, { salt: Uint8Array; usableUntilMs: number }>();
  // A request whose runtime context died (a Workers request cancelled mid-fetch) may never
  // settle: callers stop waiting on an entry older than the timeout and start a new one.
  const inflight = new Map<number, { startedMs: number; promise: Promise<SaltLookup> }>();
  // Expiry is monotone in the epoch (usable until (epoch + retention) * epochMs): one number
  // remembers every past epoch the gateway refused.
  let expiredThrough = -1;
  let backoff = { untilMs: 0, delayMs: 0, reason: '' };

  const unavailable = (reason: string): SaltLookup => ({ kind: 'unavailable', reason });

  function locallyExpired(epoch: number, t: number): boolean {
    return !Number.isSafeInteger(epoch) || epoch < 0 || epoch <= expiredThrough || t >= saltUsableUntil(epoch, o.epochMs, o.retentionEpochs) || epoch > saltEpoch(t, o.epochMs) + 1;
  }

  function cached(epoch: number, t: number): SaltLookup | undefined {
    const hit = cache.get(epoch);
    if (hit === undefined) return undefined;
    if (t < hit.usableUntilMs) return { kind: 'ok', salt: hit.salt.slice(), usableUntilMs: hit.usableUntilMs };
    cache.delete(epoch);
    expiredThrough = Math.max(expiredThrough, epoch);
    return EXPIRED;
  }

  function running(epoch: number, t: number): Promise<SaltLookup> | undefined {
    const entry = inflight.get(epoch);
    if (entry === undefined) return undefined;
    if (t - entry.startedMs <= timeoutMs + 1000) return entry.promise;
    inflight.delete(epoch);
    return undefined;
  }

  function remember(epoch: number, salt: Uint8Array, usableUntilMs: number): void {
    cache.set(epoch, { salt, usableUntilMs });
    if (cache.size > maxEpochs) cache.delete(Math.min(...cache.keys()));
  }

  function failed(epoch: number, status: number | undefined, reason: string, retryAfterS: number | undefined): SaltLookup {
    let delayMs = backoff.delayMs === 0 ? minBackoffMs : Math.min(maxBackoffMs, backoff.delayMs * 2);
    if (retryAfterS !== undefined) delayMs = Math.max(delayMs, Math.min(maxBackoffMs, retryAfterS * 1000));
    backoff = { untilMs: now() + delayMs, delayMs, reason };
    log({ event: 'salt_fetch_failed', epoch, status: status ?? null, reason, retry_in_ms: delayMs });
    return unavailable(reason);
  }

  function answered(): void {
    if (backoff.delayMs > 0) log({ event: 'salt_fetch_recovered' });
    backoff = { untilMs: 0, delayMs: 0, reason: '' };
  }

  async function request(epoch: number, prefetched: boolean): Promise<SaltLookup> {
    let res: Response;
    try {
      const headers = await signGatewayRequest({ kind: 'salts', edgeId: o.gateway.edgeId, secret: o.gateway.secret, body: saltRequestBody(epoch, o.epochMs), timestampMs: now() });
      res = await doFetch(new Request(`${base}/v1/salts/${epoch}?epochMs=${o.epochMs}`, { method: 'GET', headers, signal: AbortSignal.timeout(timeoutMs) }));
    } catch (e) {
      return failed(epoch, undefined, `gateway unreachable: ${errorMessage(e)}`, undefined);
    }
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      body = undefined;
    }
    if (res.status === 200) {
      const salt = parseSaltAnswer(body, epoch, o.epochMs);
      if (salt === undefined) return failed(epoch, 200, `the gateway answered 200 without a valid ${SALT_BYTES}-byte salt for epoch ${epoch}`, undefined);
      answered();
      remember(epoch, salt.salt, salt.usableUntilMs);
      log({ event: 'salt_fetched', epoch, usable_until_ms: salt.usableUntilMs, prefetch: prefetched });
      return { kind: 'ok', salt: salt.salt.slice(), usableUntilMs: salt.usableUntilMs };
    }
    if (res.status === 410) {
      answered();
      // A past epoch stays expired; a refused future one (clock skew) is asked again later.
      if (epoch <= saltEpoch(now(), o.epochMs)) expiredThrough = Math.max(expiredThrough, epoch);
      return EXPIRED;
    }
    const retryAfter = Number(res.headers.get('retry-after'));
    return failed(epoch, res.status, `gateway answered ${res.status}${describeError(body)}`, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined);
  }

  function start(epoch: number, t: number, prefetched: boolean): Promise<SaltLookup> {
    const promise = request(epoch, prefetched).finally(() => {
      if (inflight.get(epoch)?.promise === promise) inflight.delete(epoch);
    });
    inflight.set(epoch, { startedMs: t, promise });
    return promise;
  }

  function prefetch(): Promise<void> | undefined {
    const t = now();
    const next = saltEpoch(t, o.epochMs) + 1;
    if (next * o.epochMs - t > marginMs || t < backoff.untilMs || cache.has(next) || running(next, t) !== undefined) return undefined;
    return start(next, t, true).then(() => undefined);
  }

  return {
    epochMs: o.epochMs,
    prefetch,
    async saltFor(epoch) {
      const t = now();
      void prefetch();
      if (locallyExpired(epoch, t)) return EXPIRED;
      const hit = cached(epoch, t) ?? running(epoch, t);
      if (hit !== undefined) return hit;
      if (t < backoff.untilMs) return unavailable(`${backoff.reason} (the gateway is asked again in ${Math.ceil((backoff.untilMs - t) / 1000)} s)`);
      return start(epoch, t, false);
    },
  };
}

/** The 200 body `{ epoch, epochMs, salt: base64, usableUntilMs }`, checked against what was asked. */
function parseSaltAnswer(body: unknown, epoch: number, epochMs: number): { salt: Uint8Array; usableUntilMs: number } | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const b = body as { epoch?: unknown; epochMs?: unknown; salt?: unknown; usableUntilMs?: unknown };
  if (b.epoch !== epoch || b.epochMs !== epochMs || typeof b.salt !== 'string' || typeof b.usableUntilMs !== 'number' || !Number.isSafeInteger(b.usableUntilMs)) return undefined;
  let binary: string;
  try {
    binary = atob(b.salt);
  } catch {
    return undefined;
  }
  if (binary.length !== SALT_BYTES) return undefined;
  const salt = new Uint8Array(SALT_BYTES);
  for (let i = 0; i < SALT_BYTES; i++) salt[i] = binary.charCodeAt(i);
  return { salt, usableUntilMs: b.usableUntilMs };
}

/** ` code: message` of the gateway's JSON error, if it sent one (never a salt: errors carry none). */
function describeError(body: unknown): string {
  const error = body !== null && typeof body === 'object' ? (body as { error?: { code?: unknown; message?: unknown } }).error : undefined;
  if (error === undefined || typeof error.code !== 'string') return '';
  return ` ${error.code}${typeof error.message === 'string' ? `: ${error.message.slice(0, 300)}` : ''}`;
}
