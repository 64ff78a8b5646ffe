import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import type { ReadKey } from '../config/read-keys.ts';
import { isLoopbackHost } from '../listen-address.ts';

/**
 * Who may read through the query API: holders of the configured read keys, each for its sites;
 * or, in dev only, anyone who reaches it (it then listens on loopback only).
 */
export type QueryAccess = { kind: 'keys'; keys: readonly ReadKey[] } | { kind: 'open' };

/** The principal of one request, set by `readAccess()` as the context variable `reader`. */
export interface Reader {
  sites: ReadonlySet<string> | 'all';
  /** `key 2` (its position in QUERY_READ_KEYS) or `dev`: how logs name the reader, never by the key. */
  name: string;
}

export type ReaderVariables = { reader: Reader; requestId: string };

/**
 * The query API's access for a deployment: the read keys when any are configured; open only in
 * dev (`tributary start`, TRIBUTARY_ENV=dev) on a loopback address. Throws with what to set
 * otherwise, so the process refuses to start rather than serve every site to anyone.
 */
export function resolveQueryAccess(o: { readKeys: readonly ReadKey[]; host: string; dev: boolean }): QueryAccess {
  if (o.readKeys.length > 0) return { kind: 'keys', keys: o.readKeys };
  if (!o.dev) {
    throw new Error('QUERY_READ_KEYS is not set: outside dev (TRIBUTARY_ENV=dev) the query API answers only requests with a read key. Set QUERY_READ_KEYS=rk_<secret>:site1+site2 and send Authorization: Bearer rk_<secret> (README, docs/QUERIES.md)');
  }
  if (!isLoopbackHost(o.host)) {
    throw new Error(`QUERY_HOST=${o.host} is not a loopback address, and without QUERY_READ_KEYS the dev query API serves every site to anyone who reaches it: keep QUERY_HOST=127.0.0.1 or set QUERY_READ_KEYS`);
  }
  return { kind: 'open' };
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/**
 * The key presented, if it is one of `keys`. Compared as SHA-256 digests with timingSafeEqual,
 * against every key without stopping at a match: neither a key's length nor its position nor
 * a common prefix shows in the time taken.
 */
export function findReadKey(keys: readonly ReadKey[], presented: string): ReadKey | undefined {
  const candidate = digest(presented);
  let found: ReadKey | undefined;
  for (const k of keys) {
    if (timingSafeEqual(digest(k.key), candidate) && found === undefined) found = k;
  }
  return found;
}

/** The credential of `Authorization: Bearer <key>`; undefined when the header is absent or of another scheme. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer +([^\s]+) *$/i.exec(header ?? '');
  return m?.[1];
}

export function mayRead(reader: Reader, site: string): boolean {
  return reader.sites === 'all' || reader.sites.has(site);
}

export type ErrorAnswer = (c: Context, status: 401 | 403, code: string, message: string, headers?: Record<string, string>) => Response;

/**
 * Middleware for the data routes: sets `reader`, or answers 401 with a `WWW-Authenticate`
 * challenge. Bearer only: the key is a secret, so it is never accepted in the URL (access logs)
 * and no Basic challenge invites a browser's password dialog.
 */
export function readAccess(access: QueryAccess, answer: ErrorAnswer): MiddlewareHandler<{ Variables: ReaderVariables }> {
  return async (c, next) => {
    if (access.kind === 'open') {
      c.set('reader', { sites: 'all', name: 'dev' });
      return next();
    }
    const presented = bearerToken(c.req.header('authorization'));
    if (presented === undefined) {
      return answer(c, 401, 'unauthorized', 'a read key is required: send Authorization: Bearer <read key> (QUERY_READ_KEYS)', { 'www-authenticate': 'Bearer realm="tributary-query"' });
    }
    const key = findReadKey(access.keys, presented);
    if (key === undefined) {
      return answer(c, 401, 'unauthorized', 'the read key is not valid', { 'www-authenticate': 'Bearer realm="tributary-query", error="invalid_token"' });
    }
    c.set('reader', { sites: key.sites, name: `key ${key.entry}` });
    return next();
  };
}
