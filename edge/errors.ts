import type { EdgeAnswer } from './answer.ts';

/**
 * Errors the edge answers with. Every error body is `{ error: { code, message } }`; the
 * message says what to change. Codes are stable (documented in docs/EDGE.md); messages are not.
 */
export type EdgeErrorCode =
  | 'unknown_write_key'
  | 'invalid_json'
  | 'invalid_utf8'
  | 'invalid_gzip'
  | 'unsupported_encoding'
  | 'nesting_too_deep'
  | 'forbidden_key'
  | 'invalid_batch'
  | 'invalid_event'
  | 'payload_too_large'
  | 'too_many_events'
  | 'event_too_large'
  | 'overloaded'
  | 'sink_unavailable'
  | 'salt_unavailable'
  | 'in_flight'
  | 'dedup_unavailable'
  | 'not_found'
  | 'method_not_allowed'
  | 'body_timeout'
  | 'request_timeout'
  | 'header_too_large'
  | 'bad_request'
  | 'internal_error';

/** A request the edge refuses as a whole. A value, not an exception: steps return it. */
export interface RequestRejection {
  kind: 'reject';
  status: 400 | 401 | 404 | 405 | 408 | 413 | 415 | 431 | 500 | 503;
  code: EdgeErrorCode;
  message: string;
  /** Seconds, for 503: when the client should retry. */
  retryAfterS?: number;
  /** Per-field detail, e.g. for invalid_event. */
  errors?: Array<{ path: string; message: string }>;
}

export function rejection(
  status: RequestRejection['status'],
  code: EdgeErrorCode,
  message: string,
  extra: Pick<RequestRejection, 'retryAfterS' | 'errors'> = {},
): RequestRejection {
  return { kind: 'reject', status, code, message, ...extra };
}

/** A rejection as the JSON error answer (with Retry-After when set), for any runtime's adapter. */
export function rejectionAnswer(r: RequestRejection, headers: Readonly<Record<string, string>> = {}): EdgeAnswer {
  const body: { error: { code: string; message: string; errors?: RequestRejection['errors'] } } = {
    error: { code: r.code, message: r.message },
  };
  if (r.errors !== undefined) body.error.errors = r.errors;
  const h: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', ...headers };
  if (r.retryAfterS !== undefined) h['retry-after'] = String(r.retryAfterS);
  return { status: r.status, headers: h, body: JSON.stringify(body) };
}

