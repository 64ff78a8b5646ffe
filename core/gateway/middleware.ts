import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import { checkSignatureHeaders, verifySignedBody, type GatewayKind, type SignatureHeaders } from '../../schemas/gateway-signature.ts';
import type { EdgeSites } from '../config/gateway-keys.ts';
import type { EdgePrincipal } from './edge-principal.ts';
import type { NonceCache } from './nonce-cache.ts';
import { readLimitedBody, type ByteBudget } from './read-body.ts';
import type { RefusalLog } from './refusal-log.ts';

/** Context variables the gateway's middleware set, in the order they run. */
export interface GatewayVariables {
  /** The edge whose key the headers name (set by {@link signatureHeaders}; trusted only after {@link signedBody}). */
  edge: EdgePrincipal;
  signature: SignatureHeaders;
  /** The body as signed: read under the caps ({@link cappedBody}), or built from the URL (salts). */
  body: Uint8Array;
}

export interface GatewayEnv {
  Variables: GatewayVariables;
}

export type GatewayErrorCode =
  | 'missing_signature'
  | 'unauthorized'
  | 'stale_timestamp'
  | 'replayed_nonce'
  | 'source_not_allowed'
  | 'site_not_allowed'
  | 'implausible_sequence'
  | 'undecodable_envelope'
  | 'invalid_rejected_records'
  | 'payload_too_large'
  | 'overloaded'
  | 'kafka_unavailable'
  | 'invalid_salt_request'
  | 'salts_not_served'
  | 'epoch_ms_mismatch'
  | 'salt_expired'
  | 'salt_store_unavailable'
  | 'method_not_allowed'
  | 'not_found'
  | 'internal_error';

export type GatewayStatus = 400 | 401 | 403 | 404 | 405 | 409 | 410 | 413 | 500 | 503;

/** The gateway's error answer: `{ error: { code, message, ...extra } }`. */
export function fail(c: Context, status: GatewayStatus, code: GatewayErrorCode, message: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Response {
  return c.json({ error: { code, message, ...extra } }, status, headers);
}


const UNAUTHORIZED =
  "the request is not signed by a key the gateway knows: the edge's EDGE_ID and GATEWAY_SIGNING_KEY must match an entry edgeId:secret of GATEWAY_SIGNING_KEYS";

export interface AuthDeps {
  keys: ReadonlyMap<string, string>;
  sites: (edgeId: string) => EdgeSites;
  nonces: NonceCache;
  refusals: RefusalLog;
  now: () => number;
}

/**
 * First step of every signed call, before any body byte is read: signature headers well formed,
 * timestamp fresh, edge known, nonce not seen. Sets `edge` and `signature`. Unknown edges and
 * bad signatures both answer `401 unauthorized` (the log says which). The unread body is
 * discarded and its connection closed by the server (`lingerUnreadBodies`), never buffered.
 */
export function signatureHeaders(d: AuthDeps) {
  return createMiddleware<GatewayEnv>(async (c, next) => {
    const nowMs = d.now();
    const h = checkSignatureHeaders({ headers: c.req.raw.headers, keys: d.keys, nowMs });
    if (!h.ok) {
      d.refusals.refused(h.code, undefined);
      if (h.code === 'missing_signature' || h.code === 'stale_timestamp') return fail(c, 401, h.code, h.message);
      return fail(c, 401, 'unauthorized', UNAUTHORIZED);
    }
    if (d.nonces.refuses(h.edgeId, h.nonce, h.timestampMs, nowMs)) {
      d.refusals.refused('replayed_nonce', h.edgeId);
      return replayed(c);
    }
    c.set('signature', h);
    c.set('edge', { id: h.edgeId, sites: d.sites(h.edgeId) });
    await next();
  });
}

/**
 * Reads the body under the per-request cap (413) and the process-wide in-flight budget (503 +
 * Retry-After); the bytes count against the budget until the request is answered. Sets `body`.
 */
export function cappedBody(o: { maxBodyBytes: number; budget: ByteBudget; refusals: RefusalLog; retryAfterS: number }) {
  return createMiddleware<GatewayEnv>(async (c, next) => {
    const { result, held } = await readLimitedBody(c.req.raw, o.maxBodyBytes, o.budget);
    try {
      if (result.kind === 'too_large') {
        o.refusals.refused('payload_too_large', c.var.edge.id);
        return fail(c, 413, 'payload_too_large', `the body is over ${o.maxBodyBytes} bytes: send smaller envelopes`);
      }
      if (result.kind === 'overloaded') {
        o.refusals.refused('overloaded', c.var.edge.id);
        return fail(c, 503, 'overloaded', 'the gateway holds as many request bodies as it may: retry after Retry-After', {}, { 'retry-after': String(o.retryAfterS) });
      }
      c.set('body', result.bytes);
      await next();
    } finally {
      o.budget.give(held);
    }
  });
}

/** The HMAC over `c.var.body` for `kind`, then the nonce is remembered (a replay from now on answers `replayed_nonce`). */
export function signedBody(kind: GatewayKind, d: AuthDeps) {
  return createMiddleware<GatewayEnv>(async (c, next) => {
    const h = c.var.signature;
    const v = await verifySignedBody({ kind, headers: h, body: c.var.body, secret: d.keys.get(h.edgeId) as string });
    if (!v.ok) {
      d.refusals.refused(v.code, h.edgeId);
      return fail(c, 401, 'unauthorized', UNAUTHORIZED);
    }
    if (!d.nonces.remember(h.edgeId, h.nonce, h.timestampMs, d.now())) {
      d.refusals.refused('replayed_nonce', h.edgeId);
      return replayed(c);
    }
    await next();
  });
}

function replayed(c: Context): Response {
  return fail(c, 401, 'replayed_nonce', 'this nonce was already used: sign every attempt with a fresh nonce and timestamp');
}

/** `405` with `Allow` for a known path asked with another method. */
export function methodNotAllowed(allow: string) {
  return createMiddleware<GatewayEnv>(async (c) => fail(c, 405, 'method_not_allowed', `this endpoint answers ${allow} only`, {}, { allow }));
}
