import { createServer, STATUS_CODES, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { EdgeAnswer } from '../answer.ts';
import type { BodySource, WireRead } from '../body/read-body.ts';
import { rejection, rejectionAnswer } from '../errors.ts';
import { allowedMethods, HEADER_TOO_LARGE, INGEST_ENDPOINTS, type HeaderLookup, type IngestEndpoint, type IngestHttp } from '../http-ingest.ts';
import { countryFromHeader } from '../country.ts';

/**
 * What one Node edge process lets hostile or slow clients hold (docs/EDGE.md "Limits").
 * Without them, 1,000 stalled 400 KiB uploads held 400 MB and a body trickling one byte every
 * two seconds kept its connection for node's default 300 s (docs/SECURITY.md).
 */
export interface NodeEdgeLimits {
  /** `HEADERS_TIMEOUT_MS`: request line and headers within this long (node's `headersTimeout`). */
  headersTimeoutMs: number;
  /** `BODY_TIMEOUT_MS`: the whole body within this long after the headers. */
  bodyTimeoutMs: number;
  /** `MAX_CONNECTIONS`: open connections; one more is answered 503 and closed. */
  maxConnections: number;
  /** `MAX_INFLIGHT_BODY_BYTES`: body bytes held at once by the requests of this process. */
  maxInflightBodyBytes: number;
}

/** Body bytes held by the requests of one server, against its cap. */
interface InflightBytes {
  held: number;
  readonly max: number;
}

/** Seconds a client refused for too many connections waits before retrying. */
const CONNECTIONS_RETRY_AFTER_S = 1;

export interface NodeEdgeListenerOptions {
  /** The edge's HTTP semantics (`Edge.http`): the same instance the fallback app serves. */
  http: IngestHttp;
  /** Everything that is not a hot path (unknown paths, other methods, HEAD): the Hono app through @hono/node-server. */
  fallback: RequestListener;
  /** `COUNTRY_HEADER`, as the Hono app's default country hook reads it (Node has no `request.cf`). */
  countryHeader: string | undefined;
  /** Body timeout and in-flight byte cap. Default: none (tests of the answers alone). */
  limits?: Pick<NodeEdgeLimits, 'bodyTimeoutMs' | 'maxInflightBodyBytes'>;
}

/**
 * The Node edge's request listener: the ingest paths (`POST /v1/batch|track|page|screen|
 * identify|collect|b|t|p|s|i`), their CORS preflights and `GET /health` are served straight
 * from node:http into the runtime-neutral {@link IngestHttp}; anything else goes to `fallback`.
 *
 * Why: @hono/node-server builds a WHATWG Request (headers, AbortSignal, body stream) per request
 * and reads the answer back out of a Response; for a one-event beacon that cost more CPU than
 * the whole pipeline. Answers are the same either way: status, JSON body, CORS and Retry-After
 * all come from `IngestHttp`; body limits, gzip and the 4xx answers from `readBodySource`.
 *
 * @example
 * ```ts
 * const edge = createEdge({ config, sourceId, sink });
 * const server = createServer(createNodeEdgeListener({ http: edge.http, fallback: getRequestListener(edge.app.fetch), countryHeader: config.countryHeader }));
 * ```
 */
export function createNodeEdgeListener(o: NodeEdgeListenerOptions): RequestListener {
  const { http, fallback, countryHeader } = o;
  const bodyTimeoutMs = o.limits?.bodyTimeoutMs ?? 0;
  const inflight: InflightBytes = { held: 0, max: o.limits?.maxInflightBodyBytes ?? Infinity };

  async function ingest(req: IncomingMessage, res: ServerResponse, endpoint: IngestEndpoint): Promise<void> {
    const headers = rawHeaderLookup(req.rawHeaders);
    const body = new NodeBody(req, headers.get('content-encoding'), headers.get('content-length'), inflight, bodyTimeoutMs);
    let answer: EdgeAnswer;
    try {
      answer = await http.ingest(endpoint, { headers, body, country: countryHeader === undefined ? undefined : countryFromHeader(headers, countryHeader) });
    } catch (e) {
      answer = http.internalError(e);
    } finally {
      // The bytes are garbage once the request is handled (parsed, aggregated or refused).
      body.release();
    }
    // A body left unread (refused before reading it, over the cap, too slow): close the
    // connection rather than read the rest of an upload nobody wants, as @hono/node-server does.
    writeAnswer(res, answer, !body.consumed);
  }

  return (req, res) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const method = req.method;
    const endpoint = INGEST_ENDPOINTS.get(path);
    if (endpoint !== undefined) {
      if (method === 'POST') {
        void ingest(req, res, endpoint);
        return;
      }
      if (method === 'OPTIONS' && endpoint.cors) return writeAnswer(res, http.preflight(), false);
      // A body sent with another method is not read: close rather than parse it as the next request.
      return writeAnswer(res, http.methodNotAllowed(allowedMethods(endpoint), endpoint.cors), hasBody(req));
    } else if (path === '/health' && method === 'GET') {
      return writeAnswer(res, http.health(), false);
    }
    fallback(req, res);
  };
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function writeAnswer(res: ServerResponse, answer: EdgeAnswer, close: boolean): void {
  const headers: Record<string, string | number> = { ...answer.headers };
  if (answer.body !== null) headers['content-length'] = Buffer.byteLength(answer.body);
  if (close) headers.connection = 'close';
  res.writeHead(answer.status, headers);
  if (answer.body === null) res.end();
  else res.end(answer.body);
}

/**
 * Header lookup over node's raw header list with `Headers.get` semantics: names compared
 * case-insensitively, repeated headers joined with ", " (node's `req.headers` keeps only the
 * first `Authorization` or `User-Agent`; a web `Headers` joins them, and the answers must match).
 */
export function rawHeaderLookup(raw: readonly string[]): HeaderLookup {
  return new RawHeaders(raw);
}

class RawHeaders implements HeaderLookup {
  constructor(readonly raw: readonly string[]) {}

  get(name: string): string | null {
    const { raw } = this;
    const wanted = name.toLowerCase();
    let value: string | null = null;
    for (let i = 0; i < raw.length; i += 2) {
      const key = raw[i] as string;
      if (key.length === wanted.length && key.toLowerCase() === wanted) {
        const v = raw[i + 1] as string;
        value = value === null ? v : `${value}, ${v}`;
      }
    }
    return value;
  }
}

/** node:http's request body as a {@link BodySource}; `consumed` once it has been read to the end. */
export function nodeBodySource(req: IncomingMessage, headers: HeaderLookup): BodySource & { readonly consumed: boolean } {
  return new NodeBody(req, headers.get('content-encoding'), headers.get('content-length'), { held: 0, max: Infinity }, 0);
}

/**
 * Reads one request body. The stream listeners are shared module functions called with the
 * request as `this` (state kept on the reader), not closures made per request: the hot path
 * allocates less.
 */
class NodeBody implements BodySource {
  consumed = false;
  chunks: Buffer[] = [];
  total = 0;
  maxBytes = 0;
  /** Bytes counted against `inflight` for this body: its declared length up front, then what arrived. */
  held = 0;
  timer: ReturnType<typeof setTimeout> | undefined;
  resolve: ((r: WireRead) => void) | undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly contentEncoding: string | null,
    readonly contentLength: string | null,
    readonly inflight: InflightBytes,
    readonly timeoutMs: number,
  ) {}

  read(maxBytes: number): Promise<WireRead> {
    this.maxBytes = maxBytes;
    // Reserve a declared length at once: a thousand stalled uploads are refused before they
    // send their bytes, not after.
    const declared = Number(this.contentLength ?? NaN);
    if (Number.isFinite(declared) && declared > 0 && !this.hold(Math.min(declared, maxBytes))) return Promise.resolve({ kind: 'busy' });
    const { req } = this;
    (req as ReadingRequest)[READER] = this;
    req.on('data', onBodyData);
    req.on('end', onBodyEnd);
    req.on('error', onBodyError);
    // Closed before its end: the client went away mid-body.
    req.on('close', onBodyError);
    if (this.timeoutMs > 0) this.timer = setTimeout(onBodyTimeout, this.timeoutMs, this);
    return new Promise<WireRead>((resolve) => {
      this.resolve = resolve;
    });
  }

  /** Counts this body as holding `bytes`; false (nothing counted) when that passes the process's cap. */
  hold(bytes: number): boolean {
    if (bytes <= this.held) return true;
    const more = bytes - this.held;
    if (this.inflight.held + more > this.inflight.max) return false;
    this.inflight.held += more;
    this.held = bytes;
    return true;
  }

  release(): void {
    this.inflight.held -= this.held;
    this.held = 0;
  }

  settle(r: WireRead): void {
    const { req } = this;
    req.off('data', onBodyData);
    req.off('end', onBodyEnd);
    req.off('error', onBodyError);
    req.off('close', onBodyError);
    if (this.timer !== undefined) clearTimeout(this.timer);
    (req as ReadingRequest)[READER] = undefined;
    this.resolve?.(r);
  }
}

const READER = Symbol('tributary.bodyReader');
type ReadingRequest = IncomingMessage & { [READER]?: NodeBody | undefined };

function onBodyData(this: ReadingRequest, chunk: Buffer): void {
  const body = this[READER];
  if (body === undefined) return;
  body.total += chunk.byteLength;
  if (body.total > body.maxBytes) {
    // Stop reading the socket; the answer closes the connection.
    this.pause();
    body.settle({ kind: 'over' });
    return;
  }
  if (!body.hold(body.total)) {
    this.pause();
    body.settle({ kind: 'busy' });
    return;
  }
  body.chunks.push(chunk);
}

function onBodyEnd(this: ReadingRequest): void {
  const body = this[READER];
  if (body === undefined) return;
  body.consumed = true;
  const { chunks, total } = body;
  body.settle({ kind: 'ok', bytes: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total) });
}

function onBodyError(this: ReadingRequest): void {
  this[READER]?.settle({ kind: 'error' });
}

function onBodyTimeout(body: NodeBody): void {
  if (body.req.complete) return;
  // Stop reading the socket; the answer closes the connection.
  body.req.pause();
  body.settle({ kind: 'timeout', afterMs: body.timeoutMs });
}

export interface NodeEdgeServerOptions extends NodeEdgeListenerOptions {
  limits: NodeEdgeLimits;
}

/**
 * node:http server for the edge: {@link createNodeEdgeListener} plus the process's limits
 * against slow and hostile clients, every refusal a JSON error:
 * - headers must arrive within `headersTimeoutMs` and the body within `bodyTimeoutMs` after
 *   them (`408 request_timeout` / `408 body_timeout`, connection closed);
 * - at most `maxConnections` open connections: one more is answered `503 overloaded` with
 *   `Retry-After` and closed at once;
 * - at most `maxInflightBodyBytes` of request bodies held at once (declared lengths reserved up
 *   front): past it, `503 overloaded` with `Retry-After`;
 * - malformed HTTP and oversized headers (node's 16 KiB `maxHeaderSize`) get a JSON `400
 *   bad_request` / `431 header_too_large` instead of node's empty answer.
 *
 * @example
 * ```ts
 * const server = createNodeEdgeServer({ http: edge.http, fallback: getRequestListener(edge.app.fetch), countryHeader: config.countryHeader, limits: config });
 * server.listen(8080);
 * ```
 */
export function createNodeEdgeServer(o: NodeEdgeServerOptions): Server {
  const { limits } = o;
  const listener = createNodeEdgeListener(o);
  const refused = new WeakSet<object>();
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      // A backstop only: the listener's own body timer answers first, with a JSON body.
      requestTimeout: limits.headersTimeoutMs + limits.bodyTimeoutMs + 1000,
      // Node checks both timeouts on this interval (default 30 s): finer, so they hold to a second.
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    },
    (req, res) => {
      // Answered already on connect (over MAX_CONNECTIONS).
      if (refused.has(req.socket)) return void res.destroy();
      listener(req, res);
    },
  );
  let open = 0;
  server.on('connection', (socket: Duplex) => {
    open++;
    socket.once('close', () => open--);
    if (open > limits.maxConnections) {
      refused.add(socket);
      const answer = rejectionAnswer(
        rejection(503, 'overloaded', 'the edge has too many open connections (MAX_CONNECTIONS): retry after the Retry-After delay, and reuse connections (keep-alive)', { retryAfterS: CONNECTIONS_RETRY_AFTER_S }),
      );
      socket.end(rawHttpAnswer(answer));
    }
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    // An answer already under way, or a client gone: nothing can be said any more.
    if (error.code === 'ECONNRESET' || !socket.writable || (socket as { _httpMessage?: unknown })._httpMessage) return void socket.destroy();
    socket.end(rawHttpAnswer(clientErrorAnswer(error.code)));
  });
  return server;
}

/** The answer to a request node:http could not parse or did not receive in time. */
function clientErrorAnswer(code: string | undefined): EdgeAnswer {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return rejectionAnswer(HEADER_TOO_LARGE);
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return rejectionAnswer(rejection(408, 'request_timeout', 'the request did not arrive in time (HEADERS_TIMEOUT_MS for the headers, BODY_TIMEOUT_MS for the body): resend it'));
    default:
      return rejectionAnswer(rejection(400, 'bad_request', 'the request is not valid HTTP/1.1: check the request line, header names and values, and the framing (Content-Length or chunked)'));
  }
}

/** An answer as raw HTTP/1.1 bytes, for a socket node:http no longer (or not yet) writes to. */
function rawHttpAnswer(answer: EdgeAnswer): string {
  const body = answer.body ?? '';
  let head = `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? ''}\r\n`;
  for (const [name, value] of Object.entries(answer.headers)) head += `${name}: ${value}\r\n`;
  return `${head}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}
