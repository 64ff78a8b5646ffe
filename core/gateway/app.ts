import { Hono, type Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import { decodeEnvelope } from '../../shared/algebra/index.ts';
import { GATEWAY_MAX_AGE_MS, saltRequestBody } from '../../schemas/gateway-signature.ts';
import { ownSourceForms } from '../../schemas/gateway-sources.ts';
import { redactRejectedRecord } from '../../shared/privacy/redact.ts';
import type { PipelineSink } from '../../shared/ports/pipeline-sink.ts';
import type { Scrub } from '../../shared/privacy/scrub.ts';
import type { SaltProvider } from '../../shared/salts.ts';
import type { EdgeSites } from '../config/gateway-keys.ts';
import type { Logger } from '../log.ts';
import { mayWriteSite, ownsSource } from './edge-principal.ts';
import { cappedBody, fail, methodNotAllowed, signatureHeaders, signedBody, type AuthDeps, type GatewayEnv } from './middleware.ts';
import { createNonceCache, type NonceCache } from './nonce-cache.ts';
import { createByteBudget, type ByteBudget } from './read-body.ts';
import { createRefusalLog, type RefusalLog } from './refusal-log.ts';
import { createSequenceDedup, type SequenceDedup } from './sequence-dedup.ts';
import { errorMessage } from '../../shared/errors.ts';

export type { GatewayErrorCode } from './middleware.ts';

export interface GatewayAppOptions {
  /** edge id -> signing secret (`GATEWAY_SIGNING_KEYS`). */
  keys: ReadonlyMap<string, string>;
  /** edge id -> the sites it may write (`GATEWAY_EDGE_SITES`). Unset, or an edge not in it: every site. */
  edgeSites?: ReadonlyMap<string, EdgeSites>;
  /** Kafka (core/kafka/pipeline-producer.ts): a send resolves once acknowledged with acks = all. */
  producer: PipelineSink;
  logger: Logger;
  now?: () => number;
  /** Default 4 MiB: an envelope is at most ~0.9 MB; rejected batches are JSON. */
  maxBodyBytes?: number;
  /** Body bytes held at once, all requests together (default 64 MiB); beyond it 503 + Retry-After. */
  budget?: ByteBudget;
  nonces?: NonceCache;
  dedup?: SequenceDedup;
  /** Refused requests, logged in bounded volume (default: one summary per 10 s). */
  refusals?: RefusalLog;
  /** Retry-After (seconds) when Kafka or the salt store is unavailable, or the gateway is full. Default 5. */
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

const MAX_REJECTED_PER_REQUEST = 1000;

/**
 * How far ahead of the gateway's clock an envelope's sequence may be. Edges start a source's
 * sequences at their clock in ms (edge/flusher.ts, edge/worker/edge-shard.ts) and add one per
 * envelope — far fewer than one per ms — so a real source stays behind the clock; a day's margin
 * leaves room for skewed clocks and bursts. A sequence beyond it would make the gateway and the
 * aggregator treat every later envelope of that source as a duplicate (ADR 0015).
 */
export const SEQUENCE_MAX_LEAD_MS = 24 * 3_600_000;

/** Nonces remembered per edge: a minute of freshness at ~330 requests per second and edge; beyond that only that edge's own floor rises. */
const NONCES_PER_EDGE = 20_000;

/**
 * The gateway between edges that cannot speak Kafka (Workers, Deno) and topic `partials`.
 * Every signed call passes the same middleware, in this order (ADR 0015):
 * {@link signatureHeaders} (headers, timestamp, known edge, unseen nonce — **no body byte read
 * yet**) → {@link cappedBody} (per-request cap, process-wide in-flight budget) → {@link signedBody}
 * (HMAC, nonce remembered) → the handler, which checks what the edge may do with `c.var.edge`.
 *
 * `POST /v1/partials` (body: one binary envelope): envelope decoded (400 with the decoder's
 * reason otherwise), its source id one of the edge's own (403 `source_not_allowed`), every row's
 * site allowed to the edge (403 `site_not_allowed`), its sequence at most {@link SEQUENCE_MAX_LEAD_MS}
 * ahead of the clock (400 `implausible_sequence`), (sourceId, sequence) deduplicated — a
 * duplicate answers 200 without producing — then produced with key = sourceId, and answered 200
 * **only after Kafka acknowledged** it (503 + Retry-After when Kafka is unavailable; the edge
 * keeps the envelope and retries the same sequence).
 * `POST /v1/rejected` (body: JSON array of rejected records, each of a site the edge may write)
 * goes to topic `rejected`, each record redacted again with the edges' own function
 * ({@link redactRejectedRecord}): what an edge already redacted passes unchanged, a raw user id,
 * e-mail or phone number does not.
 * `GET /v1/salts/{epoch}?epochMs=<edge SALT_EPOCH_MS>` (signed over {@link saltRequestBody})
 * answers `200 { epoch, epochMs, salt: base64, usableUntilMs }`, `410` once the epoch is past
 * retention, `409` when the edge's epoch length differs from the gateway's, `503` + Retry-After
 * when the salt store is unreachable (docs/EDGE.md "Salt epochs").
 * Any other method on these paths answers `405` with `Allow`.
 *
 * @example
 * ```ts
 * const app = createGatewayApp({ keys: new Map([['workers-prod', secret]]), edgeSites: new Map([['workers-prod', new Set(['shop'])]]), producer, logger });
 * listenGateway(app, { port: 8082 });
 * ```
 */
export function createGatewayApp(o: GatewayAppOptions): Hono<GatewayEnv> {
  const now = o.now ?? Date.now;
  const maxBodyBytes = o.maxBodyBytes ?? 4 * 1024 * 1024;
  const budget = o.budget ?? createByteBudget(64 * 1024 * 1024);
  const nonces = o.nonces ?? createNonceCache({ capacityPerEdge: NONCES_PER_EDGE, ttlMs: GATEWAY_MAX_AGE_MS });
  const dedup = o.dedup ?? createSequenceDedup({ maxSources: 100_000 });
  const refusals = o.refusals ?? createRefusalLog({ logger: o.logger, intervalMs: 10_000, now });
  const retryAfterS = o.retryAfterS ?? 5;
  const auth: AuthDeps = { keys: o.keys, sites: (edgeId) => o.edgeSites?.get(edgeId) ?? '*', nonces, refusals, now };
  const headers = signatureHeaders(auth);
  const body = cappedBody({ maxBodyBytes, budget, refusals, retryAfterS });
  // A retry that arrives while the first attempt is still being produced waits for its outcome.
  const inFlight = new Map<string, Promise<boolean>>();

  const refuse = (c: Context<GatewayEnv>, status: 400 | 403, code: 'source_not_allowed' | 'site_not_allowed' | 'implausible_sequence' | 'undecodable_envelope' | 'invalid_rejected_records', message: string, extra: Record<string, unknown> = {}): Response => {
    refusals.refused(code, c.var.edge.id);
    return fail(c, status, code, message, extra);
  };

  const logProduceFailure = (topic: string, error: unknown): void => {
    o.logger.error({ event: 'kafka_produce_failed', topic, error: errorMessage(error) });
  };
  const unavailable = (c: Context): Response =>
    fail(c, 503, 'kafka_unavailable', 'Kafka did not acknowledge the message: retry the same request after Retry-After (a retried envelope keeps its sequence and is not produced twice)', {}, { 'retry-after': String(retryAfterS) });

  const app = new Hono<GatewayEnv>();
  app.post('/v1/partials', headers, body, signedBody('partials', auth), async (c) => {
    const edge = c.var.edge;
    const decoded = decodeEnvelope(c.var.body);
    if (!decoded.ok) {
      return refuse(c, 400, 'undecodable_envelope', `the envelope cannot be decoded: ${decoded.error.message}`, { reason: decoded.error.code, offset: decoded.error.offset });
    }
    const { sourceId, sequence, rows } = decoded.value;
    if (!ownsSource(edge, sourceId)) {
      return refuse(c, 403, 'source_not_allowed', `edge ${edge.id} may only send source ids ${ownSourceForms(edge.id)}`);
    }
    const foreign = rows.find((r) => !mayWriteSite(edge, r.site));
    if (foreign !== undefined) {
      return refuse(c, 403, 'site_not_allowed', `edge ${edge.id} may not write site ${JSON.stringify(foreign.site)}: add it to the edge's entry in GATEWAY_EDGE_SITES, or route that site's write key to another edge`);
    }
    if (sequence > now() + SEQUENCE_MAX_LEAD_MS) {
      return refuse(c, 400, 'implausible_sequence', `sequence ${sequence} is more than ${SEQUENCE_MAX_LEAD_MS} ahead of the gateway's clock in ms: edges start a source's sequences at their clock and add one per envelope`);
    }
    const key = `${sourceId}\u0000${sequence}`;
    const running = inFlight.get(key);
    if (running !== undefined) {
      return (await running) ? c.json({ ok: true, duplicate: true }, 200) : unavailable(c);
    }
    if (dedup.isDuplicate(sourceId, sequence)) {
      o.logger.info({ event: 'envelope_duplicate', source_id: sourceId, sequence });
      return c.json({ ok: true, duplicate: true }, 200);
    }
    const produce = o.producer.sendPartials({ key: sourceId, value: c.var.body }).then(
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
  app.all('/v1/partials', methodNotAllowed('POST'));

  app.post('/v1/rejected', headers, body, signedBody('rejected', auth), async (c) => {
    const edge = c.var.edge;
    const records = parseRejected(c.var.body);
    if (records === undefined) {
      return refuse(c, 400, 'invalid_rejected_records', `expected a JSON array of at most ${MAX_REJECTED_PER_REQUEST} rejected records, each an object with a string "site"`);
    }
    const foreign = records.find((r) => !mayWriteSite(edge, r.site));
    if (foreign !== undefined) {
      return refuse(c, 403, 'site_not_allowed', `edge ${edge.id} may not write site ${JSON.stringify(foreign.site.slice(0, 140))}: add it to the edge's entry in GATEWAY_EDGE_SITES`);
    }
    try {
      const redacted = records.map((r) => redactRejectedRecord(r, o.scrub ? { scrub: o.scrub } : {}));
      await o.producer.sendRejected(redacted);
    } catch (e) {
      logProduceFailure('rejected', e);
      return unavailable(c);
    }
    return c.json({ ok: true, records: records.length }, 200);
  });
  app.all('/v1/rejected', methodNotAllowed('POST'));

  // Validated before the signature: the signed body is built from these two numbers.
  const saltRequest = createMiddleware<GatewayEnv>(async (c, next) => {
    const epochText = c.req.param('epoch') ?? '';
    const epochMsText = c.req.query('epochMs') ?? '';
    if (!/^\d{1,15}$/.test(epochText) || !/^\d{1,15}$/.test(epochMsText)) {
      return fail(c, 400, 'invalid_salt_request', 'expected GET /v1/salts/<epoch>?epochMs=<SALT_EPOCH_MS>, both whole numbers (edge/gateway-salt-provider.ts sends them)');
    }
    c.set('body', saltRequestBody(Number(epochText), Number(epochMsText)));
    await next();
  });
  app.get('/v1/salts/:epoch', saltRequest, headers, signedBody('salts', auth), async (c) => {
    const epoch = Number(c.req.param('epoch'));
    const epochMs = Number(c.req.query('epochMs'));
    const auth = { edgeId: c.var.edge.id };
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
  app.all('/v1/salts/:epoch', methodNotAllowed('GET, HEAD'));

  app.get('/health', (c) => c.json({ ok: true, edges: o.keys.size, dedupSources: dedup.sources, servesSalts: o.salts !== undefined }));
  app.all('/health', methodNotAllowed('GET, HEAD'));
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
