import { hash64FromHex, type Hash64 } from '../../shared/algebra/index.ts';
import { webCryptoHmac, type MacFactory, type MacSigner, type SaltProvider } from '../../shared/salts.ts';
import type { SegmentEvent } from '../../schemas/validators.ts';
import { createBoundedCache } from '../../shared/bounded-cache.ts';

/** A user's pseudonym in one salt epoch: 16 hex chars, and the same 64 bits as the HLL input. */
export interface Pseudonym {
  hex: string;
  hash: Hash64;
}

export type PseudonymResult =
  | { kind: 'ok'; pseudonym: Pseudonym }
  /** The epoch's salt is deleted: the event can be counted, its user cannot. */
  | { kind: 'expired' }
  /** The salt provider could not answer: refuse the request with 503 and let the client retry. */
  | { kind: 'unavailable'; reason: string };

/** Turns (epoch, site, raw user id) into a pseudonym; see {@link createPseudonymizer}. */
export interface Pseudonymizer {
  /**
   * The answer without awaiting, when it can be had: a cache hit, an expired epoch, or a miss
   * computed at once because the epoch's salt is at hand and the MAC is synchronous. Undefined:
   * await {@link Pseudonymizer.pseudonym}. This is the hot path.
   */
  now(epoch: number, siteId: string, rawUserId: string, nowMs: number): PseudonymResult | undefined;
  pseudonym(epoch: number, siteId: string, rawUserId: string, nowMs: number): Promise<PseudonymResult>;
  readonly cacheSize: number;
}

export interface PseudonymizerOptions {
  salts: SaltProvider;
  /** Pseudonyms cached, keyed by (epoch, site, id). Default 50 000. */
  cacheSize?: number;
  /** HMAC-SHA-256 implementation. Default `crypto.subtle`; the Node entry passes node:crypto (synchronous, far cheaper per call). */
  mac?: MacFactory;
}

interface EpochKey {
  signer: MacSigner;
  usableUntilMs: number;
}

const encoder = new TextEncoder();
/** Epoch keys kept; with daily epochs: today, yesterday, tomorrow and spares. */
const MAX_EPOCH_KEYS = 8;

/**
 * Pseudonym = first 16 hex chars (64 bits) of HMAC-SHA-256(salt of the epoch, siteId + ':' + userId).
 * The same user gets the same pseudonym on every edge within an epoch (all edges get the same
 * salt from the {@link SaltProvider}), a different one in the next epoch, and none once the
 * epoch's salt is past its retention (`usableUntilMs`): such events count without their user.
 *
 * Results are cached in a bounded map keyed by (epoch, site, id), so HMAC runs only on a cache
 * miss (one user sends many events). Concurrent misses for the same key share one computation.
 * The cache holds raw ids in memory only; they never leave the process.
 *
 * @example
 * ```ts
 * const p = createPseudonymizer({ salts: createStaticSaltProvider({ secret, epochMs, retentionEpochs: 2, now: Date.now }) });
 * const r = p.now(epoch, 'site', 'u1', Date.now()) ?? (await p.pseudonym(epoch, 'site', 'u1', Date.now()));
 * ```
 */
export function createPseudonymizer(o: PseudonymizerOptions): Pseudonymizer {
  // Holds the `ok` results themselves, so a hit allocates nothing.
  const cache = createPseudonymCache(o.cacheSize ?? 50_000);
  const mac = o.mac ?? webCryptoHmac;
  const keys = new Map<number, EpochKey>();
  const loading = new Map<number, Promise<EpochKey | Exclude<PseudonymResult, { kind: 'ok' }>>>();
  const inflight = new Map<string, Promise<PseudonymResult>>();
  // Past epochs the provider called expired: they stay expired, so it is not asked again.
  const expired = createBoundedCache<number, true>(64);
  const EXPIRED: PseudonymResult = Object.freeze({ kind: 'expired' });

  // Only for sharing concurrent misses (rare); the hot path looks up the cache without it.
  const inflightKey = (epoch: number, siteId: string, rawUserId: string): string => `${epoch}\u0000${siteId}\u0000${rawUserId}`;

  function finish(epoch: number, siteId: string, rawUserId: string, mac: Uint8Array): PseudonymResult {
    const hex = toHex(mac, 8);
    const result = { kind: 'ok' as const, pseudonym: { hex, hash: hash64FromHex(hex) } };
    cache.set(epoch, siteId, rawUserId, result);
    return result;
  }

  function loadKey(epoch: number): Promise<EpochKey | Exclude<PseudonymResult, { kind: 'ok' }>> {
    let running = loading.get(epoch);
    if (running === undefined) {
      running = (async () => {
        const salt = await o.salts.saltFor(epoch);
        if (salt.kind !== 'ok') return salt;
        const key: EpochKey = { signer: await mac(salt.salt), usableUntilMs: salt.usableUntilMs };
        keys.set(epoch, key);
        if (keys.size > MAX_EPOCH_KEYS) keys.delete(Math.min(...keys.keys()));
        return key;
      })().finally(() => loading.delete(epoch));
      loading.set(epoch, running);
    }
    return running;
  }

  return {
    now(epoch, siteId, rawUserId, nowMs) {
      const key = keys.get(epoch);
      if (key === undefined) return expired.get(epoch) === true ? EXPIRED : undefined;
      if (nowMs >= key.usableUntilMs) {
        // Past retention: forget the salt; cached pseudonyms of the epoch age out of the cache.
        keys.delete(epoch);
        return EXPIRED;
      }
      const hit = cache.get(epoch, siteId, rawUserId);
      if (hit !== undefined) return hit;
      if (!key.signer.synchronous) return undefined;
      return finish(epoch, siteId, rawUserId, key.signer.sign(encoder.encode(`${siteId}:${rawUserId}`)) as Uint8Array);
    },
    pseudonym(epoch, siteId, rawUserId, nowMs) {
      const immediate = this.now(epoch, siteId, rawUserId, nowMs);
      if (immediate !== undefined) return Promise.resolve(immediate);
      const k = inflightKey(epoch, siteId, rawUserId);
      let running = inflight.get(k);
      if (running === undefined) {
        running = (async (): Promise<PseudonymResult> => {
          const key = keys.get(epoch) ?? (await loadKey(epoch));
          if (!('signer' in key)) {
            if (key.kind === 'expired' && (epoch + 1) * o.salts.epochMs <= nowMs) expired.set(epoch, true);
            return key;
          }
          if (nowMs >= key.usableUntilMs) return EXPIRED;
          return finish(epoch, siteId, rawUserId, await key.signer.sign(encoder.encode(`${siteId}:${rawUserId}`)));
        })().finally(() => inflight.delete(k));
        inflight.set(k, running);
      }
      return running;
    },
    get cacheSize() {
      return cache.size;
    },
  };
}

/** The raw id an event counts under: `userId ?? anonymousId`, as a string. */
export function rawUserId(event: Pick<SegmentEvent, 'userId' | 'anonymousId'>): string | undefined {
  const id = event.userId ?? event.anonymousId;
  return id === undefined ? undefined : String(id);
}

type CachedPseudonym = { kind: 'ok'; pseudonym: Pseudonym };

/**
 * Pseudonyms by epoch, then site, then raw id, holding at most `capacity` in all (first in,
 * first out, through a ring as in shared/bounded-cache.ts). Nested rather than keyed by one
 * `epoch + site + id` string: building and hashing that string per event cost about three
 * times the lookup itself (the id, fresh from JSON.parse, is hashed once either way).
 */
function createPseudonymCache(capacity: number): {
  get(epoch: number, siteId: string, rawUserId: string): CachedPseudonym | undefined;
  set(epoch: number, siteId: string, rawUserId: string, value: CachedPseudonym): void;
  readonly size: number;
} {
  const byEpoch = new Map<number, Map<string, Map<string, CachedPseudonym>>>();
  // Insertion order in three parallel arrays, so remembering an entry allocates nothing.
  const ringEpochs = new Array<number>(Math.max(0, capacity));
  const ringSites = new Array<string>(Math.max(0, capacity));
  const ringIds = new Array<string>(Math.max(0, capacity));
  let next = 0;
  let size = 0;

  function remove(epoch: number, siteId: string, rawUserId: string): void {
    const bySite = byEpoch.get(epoch);
    const byId = bySite?.get(siteId);
    if (bySite === undefined || byId === undefined) return;
    byId.delete(rawUserId);
    if (byId.size > 0) return;
    bySite.delete(siteId);
    if (bySite.size === 0) byEpoch.delete(epoch);
  }

  return {
    get: (epoch, siteId, rawUserId) => byEpoch.get(epoch)?.get(siteId)?.get(rawUserId),
    set(epoch, siteId, rawUserId, value) {
      if (capacity <= 0) return;
      let bySite = byEpoch.get(epoch);
      if (bySite === undefined) byEpoch.set(epoch, (bySite = new Map()));
      let byId = bySite.get(siteId);
      if (byId === undefined) bySite.set(siteId, (byId = new Map()));
      if (byId.has(rawUserId)) {
        byId.set(rawUserId, value);
        return;
      }
      byId.set(rawUserId, value);
      if (size < capacity) {
        const at = (next + size++) % capacity;
        ringEpochs[at] = epoch;
        ringSites[at] = siteId;
        ringIds[at] = rawUserId;
        return;
      }
      remove(ringEpochs[next] as number, ringSites[next] as string, ringIds[next] as string);
      ringEpochs[next] = epoch;
      ringSites[next] = siteId;
      ringIds[next] = rawUserId;
      next = (next + 1) % capacity;
    },
    get size() {
      return size;
    },
  };
}

function toHex(bytes: Uint8Array, n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) out += (bytes[i] as number).toString(16).padStart(2, '0');
  return out;
}
