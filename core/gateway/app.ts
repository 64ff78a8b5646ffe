import { Hono, type Context } from 'hono';
import { decodeEnvelope } from '../algebra/index.ts';
import { GATEWAY_MAX_SKEW_MS, saltRequestBody, verifyGatewayRequest, type GatewayKind } from '../../schemas/gateway-signature.ts';
import { redactRejectedRecord } from '../../edge/pipeline/redact.ts';
import type { Scrub } from '../../edge/pipeline/scrub.ts';
import type { SaltProvider } from '../../edge/salt-provider.ts';
import type { Logger } from '../log.ts';
import { createNonceCache, type NonceCache } from './nonce-cache.ts';
import type { GatewayProducer } from './ports.ts';
import { readLimitedBody } from './read-body.ts';
import { createSequenceDedup, type SequenceDedup } from './sequence-dedup.ts';

export interface GatewayAppOptions {
  /** edge id -> signing secret (`GATEWAY_SIGNING_KEYS`). */
  keys: ReadonlyMap<string, string>;
  producer: GatewayProducer;
  logger: Logger;
  now?: () => number;
  /** Default 4 MiB: an envelope is at most ~0.9 MB; rejected batches are JSON. */
  maxBodyBytes?: number;
  nonces?: NonceCache;
  dedup?: SequenceDedup;
  /** Retry-After (seconds) when Kafka or the salt store is unavailable. Default 5. */
  retryAfterS?: number;
  /**
   * Epoch salts served at `GET /v1/salts/{epoch}` to edges that cannot reach the central store
   * (`tributary gateway` passes the ClickHouse provider). Unset: that endpoint answers 404.
   */
  salts?: SaltProvider;
  /**
   * The edges' scrubber (same `PATH_SECRET_PATTERNS`): rejected records are redacted with it
   * exactly as an edge redacts them. Default: the default patterns.
   */
  scrub?: Scrub;
}

export type GatewayErrorCode =
  | 'missing_signature'
  | 'unknown_edge'
  | 'stale_timestamp'
  | 'bad_signature'
  | 'replayed_nonce'
  | 'undecodable_envelope'
  | 'invalid_rejected_records'
  | 'payload_too_large'
  | 'kafka_unavailable'
  | 'invalid_salt_request'
  | 'salts_not_served'
  | 'epoch_ms_mismatch'
  | 'salt_expired'
  | 'salt_store_unavailable'
  | 'not_found'
  | 'internal_error';

const MAX_REJECTED_PER_REQUEST = 1000;

function fail(c: Context, status: 400 | 401 | 404 | 409 | 410 | 413 | 500 | 503, code: GatewayErrorCode, message: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Response {
  return c.json({ error: { code, message, ...extra } }, status, headers);
}

/**
 * The gateway between edges that cannot speak Kafka (Workers, Deno) and topic `partials`.
 *
 * `POST /v1/partials` (body: one binary envelope): signature verified (HMAC-SHA-256, ±5 min,
 * nonce never seen before), envelope decoded (400 with the decoder's reason otherwise),
 * (sourceId, sequence) deduplicated — a duplicate answers 200 without producing — then produced
 * with key = sourceId, and answered 200 **only after Kafka acknowledged** it (503 + Retry-After
 * when Kafka is unavailable; the edge keeps the envelope and retries the same sequence).
 * `POST /v1/rejected` (body: JSON array of rejected records) goes to topic `rejected`, each record
 * redacted again with the edges' own function ({@link redactRejectedRecord}): what an edge
 * already redacted passes unchanged, a raw user id, e-mail or phone number does not.
 * `GET /v1/salts/{epoch}?epochMs=<edge SALT_EPOCH_MS>` (signed over {@link saltRequestBody})
 * answers `200 { epoch, epochMs, salt: base64, usableUntilMs }`, `410` once the epoch is past
 * retention, `409` when the edge's epoch length differs from the gateway's, `503` + Retry-After
 * when the salt store is unreachable (docs/EDGE.md "Salt epochs").
 *
 * @example
 * ```ts
 * const app = createGatewayApp({ keys: new Map([['workers-prod', secret]]), producer, logger });
 * serve({ fetch: app.fetch, port: 8082 });
 * ```
 */
export function createGatewayApp(o: GatewayAppOptions): Hono {
  const now = o.now ?? Date.now;
  const maxBodyBytes = o.maxBodyBytes ?? 4 * 1024 * 1024;
  const nonces = o.nonces ?? createNonceCache({ capacity: 100_000, ttlMs: GATEWAY_MAX_SKEW_MS });
  const dedup = o.dedup ?? createSequenceDedup({ maxSources: 100_000 });
  const retryAfterS = o.retryAfterS ?? 5;
  // A retry that arrives while the first attempt is still being produced waits for its outcome.
  const inFlight = new Map<string, Promise<boolean>>();

  async function authenticated(c: Context, kind: GatewayKind): Promise<{ body: Uint8Array; edgeId: string } | Response> {
    const body = await readLimitedBody(c.req.raw, maxBodyBytes);
    if (body === 'too_large') return fail(c, 413, 'payload_too_large', `the body is over ${maxBodyBytes} bytes: send smaller envelopes`);
    return verify(c, kind, body);
  }

  /** Signature (with `body` as the signed bytes), then replay protection. */
  async function verify(c: Context, kind: GatewayKind, body: Uint8Array): Promise<{ body: Uint8Array; edgeId: string } | Response> {
    const verified = await verifyGatewayRequest({ kind, headers: c.req.raw.headers, body, keys: o.keys, nowMs: now() });
    if (!verified.ok) {
      o.logger.warn({ event: 'gateway_auth_failed', code: verified.code, edge_id: c.req.header('x-tributary-edge') ?? null });
      return fail(c, 401, verified.code, verified.message);
    }
    if (!nonces.remember(verified.edgeId, verified.nonce, verified.timestampMs, now())) {
      o.logger.warn({ event: 'gateway_replay_refused', edge_id: verified.edgeId });
      return fail(c, 401, 'replayed_nonce', 'this nonce was already used: sign every attempt with a fresh nonce and timestamp');
    }
    return { body, edgeId: verified.edgeId };
  }

  const logProduceFailure = (topic: string, error: unknown): void => {
    o.logger.error({ event: 'kafka_produce_failed', topic, error: error instanceof Error ? error.message : String(error) });
  };
  const unavailable = (c: Context): Response =>
    fail(c, 503, 'kafka_unavailable', 'Kafka did not acknowledge the message: retry the same request after Retry-After (a retried envelope keeps its sequence and is not produced twice)', {}, { 'retry-after': String(retryAfterS) });

  const app = new Hono();
  app.post('/v1/partials', async (c) => {
    const auth = await authenticated(c, 'partials');
    if (auth instanceof Response) return auth;
    const decoded = decodeEnvelope(auth.body);
    if (!decoded.ok) {
      o.logger.warn({ event: 'envelope_undecodable', edge_id: auth.edgeId, reason: decoded.error.code });
      return fail(c, 400, 'undecodable_envelope', `the envelope cannot be decoded: ${decoded.error.message}`, { reason: decoded.error.code, offset: decoded.error.offset });
    }
    const { sourceId, sequence } = decoded.value;
    const key = `${sourceId}\u0000${sequence}`;
    const running = inFlight.get(key);
    if (running !== undefined) {
      return (await running) ? c.json({ ok: true, duplicate: true }, 200) : unavailable(c);
    }
    if (dedup.isDuplicate(sourceId, sequence)) {
      o.logger.info({ event: 'envelope_duplicate', source_id: sourceId, sequence });
      return c.json({ ok: true, duplicate: true }, 200);
    }
    const produce = o.producer.sendPartials({ key: sourceId, value: auth.body }).then(
      () => {
        dedup.produced(sourceId, sequence);
        return true;
      },
      (e: unknown) => {
        logProduceFailure('partials', e);
        return false;
      },
    );
    inFlight.set(key, produce);
    const ok = await produce.finally(() => inFlight.delete(key));
    if (!ok) return unavailable(c);
    return c.json({ ok: true, duplicate: false }, 200);
  });

  app.post('/v1/rejected', async (c) => {
    const auth = await authenticated(c, 'rejected');
    if (auth instanceof Response) return auth;
    const records = parseRejected(auth.body);
    if (records === undefined) {
      return fail(c, 400, 'invalid_rejected_records', `expected a JSON array of at most ${MAX_REJECTED_PER_REQUEST} rejected records, each an object with a string "site"`);
    }
    try {
      const redacted = records.map((r) => redactRejectedRecord(r, o.scrub ? { scrub: o.scrub } : {}));
      await o.producer.sendRejected(redacted.map((r) => ({ key: r.site, value: JSON.stringify(r) })));
    } catch (e) {
      logProduceFailure('rejected', e);
      return unavailable(c);
    }
    return c.json({ ok: true, records: records.length }, 200);
  });

  app.get('/v1/salts/:epoch', async (c) => {
    const epochText = c.req.param('epoch');
    const epochMsText = c.req.query('epochMs') ?? '';
    if (!/^\d{1,15}$/.test(epochText) || !/^\d{1,15}$/.test(epochMsText)) {
      return fail(c, 400, 'invalid_salt_request', 'expected GET /v1/salts/<epoch>?epochMs=<SALT_EPOCH_MS>, both whole numbers (edge/gateway-salt-provider.ts sends them)');
    }
    const epoch = Number(epochText);
    const epochMs = Number(epochMsText);
    const auth = await verify(c, 'salts', saltRequestBody(epoch, epochMs));
    if (auth instanceof Response) return auth;
    if (o.salts === undefined) {
      return fail(c, 404, 'salts_not_served', 'this gateway does not serve pseudonym salts: start it with SALT_SOURCE=clickhouse (the default), or set SALT_SOURCE=static on the edge');
    }
    if (epochMs !== o.salts.epochMs) {
      o.logger.warn({ event: 'salt_epoch_ms_mismatch', edge_id: auth.edgeId, edge_epoch_ms: epochMs, gateway_epoch_ms: o.salts.epochMs });
      return fail(c, 409, 'epoch_ms_mismatch', `the edge's SALT_EPOCH_MS=${epochMs} differs from the gateway's SALT_EPOCH_MS=${o.salts.epochMs}: set the same value on every edge and the gateway, or the same user gets different pseudonyms on different edges`, { gatewayEpochMs: o.salts.epochMs });
    }
    const lookup = await o.salts.saltFor(epoch);
    if (lookup.kind === 'expired') {
      return fail(c, 410, 'salt_expired', `the salt of epoch ${epoch} is past retention (or more than one epoch ahead): count such events without their user`);
    }
    if (lookup.kind === 'unavailable') {
      o.logger.error({ event: 'salt_store_unavailable', edge_id: auth.edgeId, epoch, reason: lookup.reason });
      return fail(c, 503, 'salt_store_unavailable', 'the salt store cannot be reached: retry after Retry-After', {}, { 'retry-after': String(retryAfterS) });
    }
    // Logged for audit (who obtained which epoch's salt); the salt itself never is.
    o.logger.info({ event: 'salt_served', edge_id: auth.edgeId, epoch });
    return c.json({ epoch, epochMs, salt: toBase64(lookup.salt), usableUntilMs: lookup.usableUntilMs }, 200, { 'cache-control': 'no-store' });
  });

  app.get('/health', (c) => c.json({ ok: true, edges: o.keys.size, dedupSources: dedup.sources, servesSalts: o.salts !== undefined }));
  app.notFound((c) => fail(c, 404, 'not_found', 'no such endpoint: POST /v1/partials, POST /v1/rejected, GET /v1/salts/{epoch} or GET /health'));
  app.onError((err, c) => {
    o.logger.error({ event: 'gateway_request_failed', error: err.message });
    return fail(c, 500, 'internal_error', 'the gateway failed to handle the request: retry it');
  });
  return app;
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function parseRejected(body: Uint8Array): Array<{ site: string }> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length > MAX_REJECTED_PER_REQUEST) return undefined;
  const ok = value.every((r: unknown) => r !== null && typeof r === 'object' && typeof (r as { site?: unknown }).site === 'string');
  return ok ? (value as Array<{ site: string }>) : undefined;
}
