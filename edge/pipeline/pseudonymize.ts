import type { SegmentEvent } from '../../schemas/validators.ts';

/** Turns (site, raw user id) into a pseudonym; see {@link createPseudonymizer}. */
export interface Pseudonymizer {
  pseudonym(siteId: string, rawUserId: string): Promise<string>;
}

const encoder = new TextEncoder();

/**
 * Pseudonym = first 16 hex chars (64 bits) of HMAC-SHA-256(salt, siteId + ':' + userId).
 * The salt is the epoch secret shared by all edges: the same user gets the same pseudonym on
 * every edge within an epoch, and once the epoch's salt is deleted pseudonyms cannot be linked
 * back to ids. The site is part of the message so one user is not linkable across sites.
 *
 * Recent results are cached (bounded, least recently used evicted) because one user sends
 * many events and HMAC is the costliest step per event. The cache holds raw ids in memory
 * only; they never leave the process.
 */
export function createPseudonymizer(o: { salt: string; cacheSize?: number }): Pseudonymizer {
  const cacheSize = o.cacheSize ?? 10_000;
  const cache = new Map<string, string>();
  let key: Promise<CryptoKey> | undefined;

  return {
    async pseudonym(siteId, rawUserId) {
      const message = `${siteId}:${rawUserId}`;
      const hit = cache.get(message);
      if (hit !== undefined) {
        // Re-insert so Map order approximates recency.
        cache.delete(message);
        cache.set(message, hit);
        return hit;
      }
      key ??= crypto.subtle.importKey('raw', encoder.encode(o.salt), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
      const mac = new Uint8Array(await crypto.subtle.sign('HMAC', await key, encoder.encode(message)));
      const value = toHex(mac, 8);
      cache.set(message, value);
      if (cache.size > cacheSize) {
        const oldest = cache.keys().next();
        if (!oldest.done) cache.delete(oldest.value);
      }
      return value;
    },
  };
}

/** The raw id an event counts under: `userId ?? anonymousId`, as a string. */
export function rawUserId(event: Pick<SegmentEvent, 'userId' | 'anonymousId'>): string | undefined {
  const id = event.userId ?? event.anonymousId;
  return id === undefined ? undefined : String(id);
}

function toHex(bytes: Uint8Array, n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) out += (bytes[i] as number).toString(16).padStart(2, '0');
  return out;
}
