import type { ConfigErrors } from './env.ts';

/** One reader's credential: the secret it presents as `Authorization: Bearer <key>` and the sites it may read. */
export interface ReadKey {
  readonly key: string;
  /** `all` for `*`: every site (an operator's or an internal dashboard's key). */
  readonly sites: ReadonlySet<string> | 'all';
  /** 1-based position in QUERY_READ_KEYS: how logs name the key, never by its value. */
  readonly entry: number;
}

const MIN_KEY_LENGTH = 24;
// A bearer token (RFC 6750 b64token) that cannot contain the list's separators.
const KEY = /^[A-Za-z0-9._~+/=-]+$/;
// The edge's site id form (TRIBUTARY_WRITE_KEYS).
const SITE = /^[A-Za-z0-9_.-]{1,128}$/;
const FORM = `a comma list of key:site+site (key: at least ${MIN_KEY_LENGTH} characters of letters, digits, ".", "_", "~", "+", "/", "=", "-", e.g. rk_$(openssl rand -hex 16); sites: site ids joined by "+", or * for every site)`;

/**
 * Parses `QUERY_READ_KEYS` = `rk_secret:site1+site2,rk_other:*`. Read keys are secrets (unlike
 * write keys, which ship in web pages), so a read key may not also be a write key. Messages name
 * entries by position and never quote a key. Unset gives no keys: the query API then refuses to
 * start outside dev.
 *
 * @example
 * parseReadKeys('rk_0123456789abcdef01234567:shop+blog', undefined, errors);
 * // [{ key: 'rk_0123456789abcdef01234567', sites: Set { 'shop', 'blog' }, entry: 1 }]
 */
export function parseReadKeys(raw: string | undefined, writeKeysRaw: string | undefined, errors: ConfigErrors): ReadKey[] {
  if (raw === undefined) return [];
  const writeKeys = new Set((writeKeysRaw ?? '').split(',').map((e) => e.split(':')[0]?.trim()).filter((k): k is string => !!k));
  const keys: ReadKey[] = [];
  const entryOf = new Map<string, number>();
  raw.split(',').map((s) => s.trim()).filter((s) => s !== '').forEach((text, i) => {
    const entry = i + 1;
    const at = `QUERY_READ_KEYS entry ${entry}`;
    const colon = text.indexOf(':');
    if (colon < 0) return errors.add(`${at} has no ':' between key and sites: expected ${FORM}`);
    const key = text.slice(0, colon).trim();
    const sitesText = text.slice(colon + 1).trim();
    if (!KEY.test(key)) return errors.add(`${at} has a key with characters outside the accepted set: expected ${FORM}`);
    if (key.length < MIN_KEY_LENGTH) return errors.add(`${at} has a key shorter than ${MIN_KEY_LENGTH} characters: expected ${FORM}`);
    if (writeKeys.has(key)) return errors.add(`${at} is also a write key (TRIBUTARY_WRITE_KEYS): write keys are public, give readers a secret key of their own`);
    const first = entryOf.get(key);
    if (first !== undefined) return errors.add(`${at} repeats the key of entry ${first}: list all of a key's sites in one entry (site1+site2)`);
    let sites: ReadKey['sites'];
    if (sitesText === '*') sites = 'all';
    else {
      const list = sitesText.split('+').map((s) => s.trim());
      // Site ids are not secret: the offending one is named.
      const bad = list.find((s) => !SITE.test(s));
      if (bad !== undefined) return errors.add(`${at} names an invalid site ${JSON.stringify(bad.slice(0, 140))}: expected ${FORM}`);
      sites = new Set(list);
    }
    entryOf.set(key, entry);
    keys.push({ key, sites, entry });
  });
  return keys;
}
