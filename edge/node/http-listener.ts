import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { EdgeAnswer } from '../answer.ts';
import type { BodySource, WireRead } from '../body/read-body.ts';
import { INGEST_ENDPOINTS, type HeaderLookup, type IngestEndpoint, type IngestHttp } from '../http-ingest.ts';
import { countryFromHeader } from '../country.ts';

export interface NodeEdgeListenerOptions {
  /** The edge's HTTP semantics (`Edge.http`): the same instance the fallback app serves. */
  http: IngestHttp;
  /** Everything that is not a hot path (unknown paths, other methods, HEAD): the Hono app through @hono/node-server. */
  fallback: RequestListener;
  /** `COUNTRY_HEADER`, as the Hono app's default country hook reads it (Node has no `request.cf`). */
  countryHeader: string | undefined;
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
 * const edge = createEdge({ config, sourceId, partialSink, rejectedSink });
 * const server = createServer(createNodeEdgeListener({ http: edge.http, fallback: getRequestListener(edge.app.fetch), countryHeader: config.countryHeader }));
 * ```
 */
export function createNodeEdgeListener(o: NodeEdgeListenerOptions): RequestListener {
  const { http, fallback, countryHeader } = o;

  async function ingest(req: IncomingMessage, res: ServerResponse, endpoint: IngestEndpoint): Promise<void> {
    const headers = rawHeaderLookup(req.rawHeaders);
    const body = nodeBodySource(req, headers);
    let answer: EdgeAnswer;
    try {
      answer = await http.ingest(endpoint, { headers, body, country: countryHeader === undefined ? undefined : countryFromHeader(headers, countryHeader) });
    } catch (e) {
      answer = http.internalError(e);
    }
    // A body left unread (refused before reading it, or over the cap): close the connection
    // rather than read the rest of an upload nobody wants, as @hono/node-server does.
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
    } else if (path === '/health' && method === 'GET') {
      return writeAnswer(res, http.health(), false);
    }
    fallback(req, res);
  };
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
  return new NodeBody(req, headers.get('content-encoding'), headers.get('content-length'));
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
  resolve: ((r: WireRead) => void) | undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly contentEncoding: string | null,
    readonly contentLength: string | null,
  ) {}

  read(maxBytes: number): Promise<WireRead> {
    this.maxBytes = maxBytes;
    const { req } = this;
    (req as ReadingRequest)[READER] = this;
    req.on('data', onBodyData);
    req.on('end', onBodyEnd);
    req.on('error', onBodyError);
    // Closed before its end: the client went away mid-body.
    req.on('close', onBodyError);
    return new Promise<WireRead>((resolve) => {
      this.resolve = resolve;
    });
  }

  settle(r: WireRead): void {
    const { req } = this;
    req.off('data', onBodyData);
    req.off('end', onBodyEnd);
    req.off('error', onBodyError);
    req.off('close', onBodyError);
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
