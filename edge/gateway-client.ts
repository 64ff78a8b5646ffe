import { signGatewayRequest, type GatewayKind } from '../schemas/gateway-signature.ts';
import type { PipelineSink } from '../shared/ports/pipeline-sink.ts';
import { errorMessage } from '../shared/errors.ts';

/** Where and as whom an edge posts to the gateway (see {@link parseGatewayClientConfig}). */
export interface GatewayClientConfig {
  /** Base URL, e.g. `https://gateway.example.com`; paths `/v1/partials` and `/v1/rejected` are appended. */
  url: string;
  /** This edge's id: selects its key at the gateway (`GATEWAY_SIGNING_KEYS`). */
  edgeId: string;
  /** HMAC secret shared with the gateway. Never log it. */
  secret: string;
}

export interface GatewayClientOptions extends GatewayClientConfig {
  /** Default: the global `fetch`, looked up per call (so a test can stub it). */
  fetch?: (request: Request) => Promise<Response>;
  now?: () => number;
  /** Per attempt. Default 10 s. */
  timeoutMs?: number;
}

/** The gateway's answer: `ok` only for 200 (the body is then in Kafka). */
export type GatewayResult = { ok: true } | { ok: false; status: number | undefined; retryAfterS: number | undefined; error: string };

/** The gateway calls that POST a body (salts are fetched by edge/gateway-salt-provider.ts). */
export type GatewayPostKind = Exclude<GatewayKind, 'salts'>;

export interface GatewayClient {
  /** Signs (fresh timestamp and nonce) and POSTs one body. Never throws. */
  post(kind: GatewayPostKind, body: Uint8Array): Promise<GatewayResult>;
}

const PATHS: Record<GatewayPostKind, string> = { partials: '/v1/partials', rejected: '/v1/rejected' };
const CONTENT_TYPES: Record<GatewayPostKind, string> = { partials: 'application/octet-stream', rejected: 'application/json' };

/**
 * HTTP client of the gateway (core/gateway), web-standard only: used by the Workers Durable
 * Objects and the Deno edge. Each call is signed anew, so a retry is never refused as a replayed
 * nonce; a retried envelope keeps its (sourceId, sequence), which the gateway deduplicates.
 *
 * @example
 * ```ts
 * const gateway = createGatewayClient({ url: 'https://gw.example.com', edgeId: 'workers-prod', secret });
 * const r = await gateway.post('partials', encodeEnvelope(envelope));
 * if (!r.ok) console.log(r.status, r.error);
 * ```
 */
export function createGatewayClient(o: GatewayClientOptions): GatewayClient {
  const base = o.url.replace(/\/+$/, '');
  const now = o.now ?? Date.now;
  const doFetch = o.fetch ?? ((request: Request) => fetch(request));
  const timeoutMs = o.timeoutMs ?? 10_000;
  return {
    async post(kind, body) {
      try {
        const headers = await signGatewayRequest({ kind, edgeId: o.edgeId, secret: o.secret, body, timestampMs: now() });
        const request = new Request(`${base}${PATHS[kind]}`, {
          method: 'POST',
          headers: { ...headers, 'content-type': CONTENT_TYPES[kind] },
          body: body as Uint8Array<ArrayBuffer>,
          signal: AbortSignal.timeout(timeoutMs),
        });
        const res = await doFetch(request);
        if (res.status === 200) {
          await res.body?.cancel();
          return { ok: true };
        }
        const text = (await res.text()).slice(0, 500);
        const retryAfter = Number(res.headers.get('retry-after'));
        return { ok: false, status: res.status, retryAfterS: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined, error: `gateway answered ${res.status}: ${text}` };
      } catch (e) {
        return { ok: false, status: undefined, retryAfterS: undefined, error: `gateway unreachable: ${errorMessage(e)}` };
      }
    },
  };
}

/**
 * A gateway failure as the error of a {@link PipelineSink} send: `retriable` (as kafkajs errors
 * carry it), and the gateway's answer in `result` (status, Retry-After) for callers that pace
 * their retries by it (the Durable Object shard).
 */
export class GatewayError extends Error {
  readonly retriable = true;
  constructor(readonly result: Extract<GatewayResult, { ok: false }>) {
    super(result.error);
    this.name = 'GatewayError';
  }
}

/** The gateway's answer behind a failed send (no status for an error raised before any request). */
export function gatewayFailure(error: unknown): Extract<GatewayResult, { ok: false }> {
  return error instanceof GatewayError ? error.result : { ok: false, status: undefined, retryAfterS: undefined, error: errorMessage(error) };
}

/**
 * The {@link PipelineSink} on the gateway, for the Deno edge's flusher and the Workers shards'
 * alarms: an envelope to `/v1/partials` (the key travels inside it as its sourceId), rejected
 * records as one JSON array to `/v1/rejected`. A send resolves on the gateway's 200, which it
 * answers only after Kafka acknowledged; any other answer rejects with a {@link GatewayError}.
 * Every failure is retriable: a misconfigured key is fixed by the operator while rows wait.
 *
 * @example
 * ```ts
 * const sink = createGatewaySink(createGatewayClient({ url, edgeId, secret }));
 * const edge = createEdge({ config, sourceId, sink });
 * ```
 */
export function createGatewaySink(client: GatewayClient): PipelineSink {
  const encoder = new TextEncoder();
  const post = async (kind: GatewayPostKind, body: Uint8Array): Promise<void> => {
    const r = await client.post(kind, body);
    if (!r.ok) throw new GatewayError(r);
  };
  return {
    sendPartials: ({ value }) => post('partials', value),
    async sendRejected(records) {
      if (records.length > 0) await post('rejected', encoder.encode(JSON.stringify(records)));
    },
  };
}
