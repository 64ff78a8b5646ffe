/**
 * An HTTP answer as plain data. The edge's handlers return it instead of a `Response`, so each
 * runtime writes it its own way: a web `Response` (Hono on Workers, Deno, Node fallback) or
 * straight onto a node:http response (the Node fast path, edge/node/http-listener.ts), with the
 * same status, headers and body either way.
 *
 * @example
 * ```ts
 * const answer = jsonAnswer(202, { ok: true }, jsonHeaders({ 'access-control-allow-origin': '*' }));
 * return toResponse(answer);
 * ```
 */
export interface EdgeAnswer {
  status: number;
  headers: Readonly<Record<string, string>>;
  /** JSON text; null for no body (204). */
  body: string | null;
}

/** What `c.json()` sets on success answers; errors add the charset (see `rejectionAnswer`). */
export const JSON_CONTENT_TYPE = 'application/json';

/** The headers of a JSON answer plus `extra`; build once and reuse (answers never mutate them). */
export function jsonHeaders(extra: Readonly<Record<string, string>> = {}, contentType = JSON_CONTENT_TYPE): Readonly<Record<string, string>> {
  return Object.freeze({ 'content-type': contentType, ...extra });
}

const JSON_HEADERS = jsonHeaders();

/** `value` as JSON; `headers` must include the content type (see {@link jsonHeaders}). */
export function jsonAnswer(status: number, value: unknown, headers: Readonly<Record<string, string>> = JSON_HEADERS): EdgeAnswer {
  return { status, headers, body: JSON.stringify(value) };
}

export function toResponse(answer: EdgeAnswer): Response {
  // A copy: answers share frozen header objects, and @hono/node-server's Response keeps the
  // record it is given and adds Content-Length to it.
  return new Response(answer.body, { status: answer.status, headers: { ...answer.headers } });
}
