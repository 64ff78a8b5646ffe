/**
 * Wire contract of the edge -> gateway hop (Workers and Deno edges reach Kafka through the
 * gateway): every call carries an HMAC-SHA-256 signature over (kind, edge id, timestamp, nonce,
 * body) made with the edge's own key. Pure and web-standard (crypto.subtle only), so the Durable
 * Object, the Deno edge, the Node gateway and the tests all import this one file.
 *
 * Signed message (UTF-8 header lines, then the raw body bytes):
 *
 *   tributary-gateway-v1\n<kind>\n<edge id>\n<timestamp ms>\n<nonce>\n<body bytes>
 *
 * `kind` names the endpoint (`partials` | `rejected` | `salts`), so a body signed for one endpoint
 * cannot be replayed to another. Every attempt, retries included, gets a fresh timestamp and
 * nonce: the gateway refuses a nonce it has seen, and deduplicates retried envelopes by
 * (sourceId, sequence) instead.
 *
 * `GET /v1/salts/<epoch>?epochMs=<SALT_EPOCH_MS>` has no body: it signs the canonical string of
 * {@link saltRequestBody} (`<epoch>\n<epochMs>`) in its place, so neither number can be altered
 * in transit without breaking the signature.
 */

/** Request headers of a signed gateway call (lower case, as `Headers` reports them). */
export const GATEWAY_HEADERS = {
  edge: 'x-tributary-edge',
  timestamp: 'x-tributary-timestamp',
  nonce: 'x-tributary-nonce',
  signature: 'x-tributary-signature',
} as const;

/** What a signed body is for; part of the signed message. */
export type GatewayKind = 'partials' | 'rejected' | 'salts';

/**
 * Freshness window of a signature: the gateway refuses a timestamp older than `GATEWAY_MAX_AGE_MS`
 * or further ahead of its clock than `GATEWAY_MAX_FUTURE_MS`. Every attempt is signed just before
 * it is sent, so the age covers transit and a slow upload; the future side covers clock
 * differences between NTP-synchronised hosts only. A narrow future side keeps any edge from
 * pre-signing requests for later (ADR 0015).
 */
export const GATEWAY_MAX_AGE_MS = 60_000;
export const GATEWAY_MAX_FUTURE_MS = 10_000;

const PREFIX = 'tributary-gateway-v1';
const SIGNATURE_SCHEME = 'v1=';
const EDGE_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const NONCE = /^[A-Za-z0-9_-]{16,128}$/;
const encoder = new TextEncoder();

/**
 * Why a signature was refused. The gateway answers `unknown_edge` and `bad_signature` alike
 * (`401 unauthorized`), so a caller cannot learn which edge ids exist; the log says which.
 */
export type SignatureFailure =
  | { ok: false; code: 'missing_signature'; message: string }
  | { ok: false; code: 'unknown_edge'; message: string }
  | { ok: false; code: 'stale_timestamp'; message: string }
  | { ok: false; code: 'bad_signature'; message: string };

/** Signature headers that passed every check possible without the body (see {@link checkSignatureHeaders}). */
export interface SignatureHeaders {
  ok: true;
  edgeId: string;
  timestampMs: number;
  nonce: string;
  /** The 32-byte HMAC the body must match. */
  mac: Uint8Array<ArrayBuffer>;
}

/** A verified request: who sent it and the nonce the caller must now remember. */
export interface VerifiedSignature {
  ok: true;
  edgeId: string;
  timestampMs: number;
  nonce: string;
}

/** True for an edge id the gateway can hold a key for (letters, digits, `_ . -`, at most 64). */
export function isValidEdgeId(edgeId: string): boolean {
  return EDGE_ID.test(edgeId);
}

const keyCache = new Map<string, Promise<CryptoKey>>();

/** Imports (once per secret) the HMAC key; the secret is never kept anywhere but the CryptoKey. */
function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret);
  if (key === undefined) {
    key = crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    // A handful of edges or keys per process: bounded in practice, capped anyway.
    if (keyCache.size >= 64) keyCache.clear();
    keyCache.set(secret, key);
  }
  return key;
}

function signedMessage(kind: GatewayKind, edgeId: string, timestampMs: number, nonce: string, body: Uint8Array): Uint8Array<ArrayBuffer> {
  const head = encoder.encode(`${PREFIX}\n${kind}\n${edgeId}\n${timestampMs}\n${nonce}\n`);
  const out = new Uint8Array(head.byteLength + body.byteLength);
  out.set(head, 0);
  out.set(body, head.byteLength);
  return out;
}

/**
 * What a `salts` request signs as its body: the epoch and the edge's epoch length, canonical
 * decimal, one per line. Both sides build it from numbers, never from the raw request text.
 *
 * @example
 * ```ts
 * const headers = await signGatewayRequest({ kind: 'salts', edgeId, secret, body: saltRequestBody(20_400, 86_400_000), timestampMs: Date.now() });
 * await fetch(`${gatewayUrl}/v1/salts/20400?epochMs=86400000`, { headers });
 * ```
 */
export function saltRequestBody(epoch: number, epochMs: number): Uint8Array {
  return encoder.encode(`${epoch}\n${epochMs}`);
}

/** A fresh random nonce (128 bits, hex). */
export function newNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return toHex(bytes);
}

/**
 * Signs one gateway request. Call it per attempt: a retry must carry a new timestamp and nonce.
 *
 * @example
 * ```ts
 * const headers = await signGatewayRequest({ kind: 'partials', edgeId: 'workers-prod', secret, body, timestampMs: Date.now() });
 * await fetch(`${gatewayUrl}/v1/partials`, { method: 'POST', headers: { ...headers, 'content-type': 'application/octet-stream' }, body });
 * ```
 */
export async function signGatewayRequest(o: {
  kind: GatewayKind;
  edgeId: string;
  secret: string;
  body: Uint8Array;
  timestampMs: number;
  nonce?: string;
}): Promise<Record<string, string>> {
  if (!isValidEdgeId(o.edgeId)) throw new RangeError(`edge id ${JSON.stringify(o.edgeId)} is not valid: use letters, digits, "_", "." or "-" (at most 64)`);
  const nonce = o.nonce ?? newNonce();
  if (!NONCE.test(nonce)) throw new RangeError('nonce must be 16..128 characters of letters, digits, "_" or "-"');
  const timestampMs = Math.floor(o.timestampMs);
  const mac = await crypto.subtle.sign('HMAC', await hmacKey(o.secret), signedMessage(o.kind, o.edgeId, timestampMs, nonce, o.body));
  return {
    [GATEWAY_HEADERS.edge]: o.edgeId,
    [GATEWAY_HEADERS.timestamp]: String(timestampMs),
    [GATEWAY_HEADERS.nonce]: nonce,
    [GATEWAY_HEADERS.signature]: SIGNATURE_SCHEME + toHex(new Uint8Array(mac)),
  };
}

/**
 * Everything that can be checked before reading the body: headers present and well formed,
 * timestamp fresh (checked before the edge is looked up, so a stale timestamp says nothing about
 * which edges exist), edge known. The gateway runs this first and reads no body for a request that
 * fails it.
 *
 * @example
 * ```ts
 * const h = checkSignatureHeaders({ headers: req.headers, keys, nowMs: Date.now() });
 * if (!h.ok) return unauthorized(h.code);
 * const v = await verifySignedBody({ kind: 'partials', headers: h, body, secret: keys.get(h.edgeId)! });
 * ```
 */
export function checkSignatureHeaders(o: { headers: Headers; keys: ReadonlyMap<string, string>; nowMs: number }): SignatureHeaders | SignatureFailure {
  const edgeId = o.headers.get(GATEWAY_HEADERS.edge);
  const timestamp = o.headers.get(GATEWAY_HEADERS.timestamp);
  const nonce = o.headers.get(GATEWAY_HEADERS.nonce);
  const signature = o.headers.get(GATEWAY_HEADERS.signature);
  if (edgeId === null || timestamp === null || nonce === null || signature === null) {
    return { ok: false, code: 'missing_signature', message: `sign the request: headers ${Object.values(GATEWAY_HEADERS).join(', ')} are required (schemas/gateway-signature.ts)` };
  }
  const timestampMs = /^\d{1,16}$/.test(timestamp) ? Number(timestamp) : Number.NaN;
  if (!Number.isSafeInteger(timestampMs) || timestampMs < o.nowMs - GATEWAY_MAX_AGE_MS || timestampMs > o.nowMs + GATEWAY_MAX_FUTURE_MS) {
    return {
      ok: false,
      code: 'stale_timestamp',
      message: `the timestamp is missing, older than ${GATEWAY_MAX_AGE_MS / 1000} s or more than ${GATEWAY_MAX_FUTURE_MS / 1000} s ahead of the gateway's clock: synchronise the edge's clock (NTP) and sign each attempt just before sending it`,
    };
  }
  if (!isValidEdgeId(edgeId) || !o.keys.has(edgeId)) {
    return { ok: false, code: 'unknown_edge', message: 'this edge id has no key at the gateway: add edgeId:secret to GATEWAY_SIGNING_KEYS' };
  }
  const mac = signature.startsWith(SIGNATURE_SCHEME) ? fromHex(signature.slice(SIGNATURE_SCHEME.length)) : undefined;
  if (!NONCE.test(nonce) || mac === undefined || mac.byteLength !== 32) {
    return { ok: false, code: 'bad_signature', message: 'the signature or nonce is malformed: expected "v1=<64 hex chars>" and a 16..128 character nonce' };
  }
  return { ok: true, edgeId, timestampMs, nonce, mac };
}

/** Second half of verification: the HMAC over (kind, edge, timestamp, nonce, body), compared in constant time by crypto.subtle. */
export async function verifySignedBody(o: { kind: GatewayKind; headers: SignatureHeaders; body: Uint8Array; secret: string }): Promise<VerifiedSignature | SignatureFailure> {
  const { edgeId, timestampMs, nonce, mac } = o.headers;
  const valid = await crypto.subtle.verify('HMAC', await hmacKey(o.secret), mac, signedMessage(o.kind, edgeId, timestampMs, nonce, o.body));
  if (!valid) {
    return { ok: false, code: 'bad_signature', message: "the signature does not match: the edge's GATEWAY_SIGNING_KEY must equal its entry in GATEWAY_SIGNING_KEYS" };
  }
  return { ok: true, edgeId, timestampMs, nonce };
}

/**
 * Verifies a signed gateway request in one step ({@link checkSignatureHeaders}, then
 * {@link verifySignedBody}). Replay protection is the caller's: remember the returned nonce
 * (see core/gateway/nonce-cache.ts).
 *
 * @example
 * ```ts
 * const v = await verifyGatewayRequest({ kind: 'partials', headers: req.headers, body, keys, nowMs: Date.now() });
 * if (!v.ok) return c.json({ error: { code: 'unauthorized', message: v.message } }, 401);
 * ```
 */
export async function verifyGatewayRequest(o: {
  kind: GatewayKind;
  headers: Headers;
  body: Uint8Array;
  /** edge id -> secret */
  keys: ReadonlyMap<string, string>;
  nowMs: number;
}): Promise<VerifiedSignature | SignatureFailure> {
  const headers = checkSignatureHeaders(o);
  if (!headers.ok) return headers;
  return verifySignedBody({ kind: o.kind, headers, body: o.body, secret: o.keys.get(headers.edgeId) as string });
}

function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

function fromHex(hex: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^(?:[0-9a-f]{2})*$/i.test(hex)) return undefined;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}
