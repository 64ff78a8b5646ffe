import { rejection, type RequestRejection } from './errors.ts';

/** The write key in `Authorization: Basic base64(writeKey:)`, as Segment SDKs send it. */
export function basicAuthUser(header: string | null): string | undefined {
  if (header === null) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (m === null) return undefined;
  let decoded: string;
  try {
    decoded = atob(m[1] as string);
  } catch {
    return undefined;
  }
  const user = decoded.split(':', 1)[0] ?? '';
  return user === '' ? undefined : user;
}

/**
 * Maps a write key to its site. `Object.hasOwn` matters: a key such as `constructor` must not
 * find `Object.prototype.constructor`.
 */
export function resolveSite(writeKeys: Record<string, string>, writeKey: unknown): { kind: 'ok'; site: string } | RequestRejection {
  if (typeof writeKey === 'string' && Object.hasOwn(writeKeys, writeKey)) {
    return { kind: 'ok', site: writeKeys[writeKey] as string };
  }
  const what = typeof writeKey === 'string' ? 'is not known to this edge' : 'is missing';
  return rejection(
    401,
    'unknown_write_key',
    `the write key ${what}: send your source's write key as the Basic auth user name (curl -u WRITE_KEY: ...) or as "writeKey" in the JSON body; keys are configured in TRIBUTARY_WRITE_KEYS`,
  );
}
