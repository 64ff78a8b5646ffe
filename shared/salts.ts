/**
 * Salt epochs (ARCHITECTURE §3.6). Pseudonyms are HMACs under the salt of the event's **epoch**
 * (`floor(eventTimeMs / epochMs)`, daily by default). All edges must get the same salt for the
 * same epoch, or one user counts once per edge. A salt provider is the port through which the
 * edge gets it; see docs/EDGE.md "Salt epochs".
 */

/** What a provider answers for one epoch. */
export type SaltLookup =
  /** The epoch's salt (32 random-looking bytes), usable for event times until `usableUntilMs` (exclusive, wall clock). */
  | { kind: 'ok'; salt: Uint8Array; usableUntilMs: number }
  /** The epoch is outside the retention window: its salt is deleted (or never existed). */
  | { kind: 'expired' }
  /** The salt could not be obtained now (e.g. the central store is unreachable): retry later. */
  | { kind: 'unavailable'; reason: string };

/** Where the edge gets epoch salts from. Called on pseudonym cache misses only, at most once per epoch while it answers `ok`. */
export interface SaltProvider {
  /** Length of an epoch in ms. Epoch n covers `[n * epochMs, (n + 1) * epochMs)` of event time. */
  readonly epochMs: number;
  saltFor(epoch: number): Promise<SaltLookup>;
}

/** The epoch an (event) time falls in. */
export function saltEpoch(timeMs: number, epochMs: number): number {
  return Math.floor(timeMs / epochMs);
}

/**
 * The retention rule every provider applies: epoch `n`'s salt may be used while the clock is
 * before the start of epoch `n + retentionEpochs` (with 2: today's and yesterday's salts).
 */
export function saltUsableUntil(epoch: number, epochMs: number, retentionEpochs: number): number {
  return (epoch + retentionEpochs) * epochMs;
}

/** HMAC-SHA-256 under one key; synchronous where the runtime allows it (Node's createHmac). */
export interface MacSigner {
  synchronous: boolean;
  sign(message: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

/** Makes the HMAC-SHA-256 signer of a key. Runtime entries may pass a faster one than {@link webCryptoHmac}. */
export type MacFactory = (key: Uint8Array) => Promise<MacSigner>;

/** HMAC-SHA-256 through `crypto.subtle` (every runtime; asynchronous). */
export const webCryptoHmac: MacFactory = async (key) => {
  const k = await crypto.subtle.importKey('raw', key as Uint8Array<ArrayBuffer>, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return { synchronous: false, sign: async (message) => new Uint8Array(await crypto.subtle.sign('HMAC', k, message as Uint8Array<ArrayBuffer>)) };
};

const encoder = new TextEncoder();

export interface StaticSaltProviderOptions {
  /** `PSEUDONYM_SALT`: the master secret shared by all edges. */
  secret: string;
  epochMs: number;
  /** Epochs a salt is usable: the current one and the `retentionEpochs - 1` before it. */
  retentionEpochs: number;
  /** Clock (epoch ms) deciding which epochs are still retained. */
  now: () => number;
}

/**
 * Per-epoch salts derived from one shared secret, with no coordination between edges:
 * `salt(n) = HMAC-SHA-256(PSEUDONYM_SALT, "tributary/pseudonym-salt/v1/" + epochMs + "/" + n)`.
 *
 * Trade-off, stated plainly: the edge refuses epochs older than the retention window, but
 * anyone who holds `PSEUDONYM_SALT` can re-derive any past epoch's salt, so "deleting" a
 * derived salt does **not** make old pseudonyms unlinkable while the master secret exists.
 * Unlinkability needs random per-epoch salts deleted from a central store (docs/EDGE.md, "Salt
 * epochs"), or rotating `PSEUDONYM_SALT` itself and destroying the old value.
 *
 * The next epoch is served too: event times may be clamped up to `MAX_FUTURE_SKEW_MS` into the
 * future, which the config keeps at most one epoch.
 *
 * @example
 * ```ts
 * const salts = createStaticSaltProvider({ secret: config.pseudonymSalt, epochMs: 86_400_000, retentionEpochs: 2, now: Date.now });
 * const lookup = await salts.saltFor(saltEpoch(Date.now(), salts.epochMs));
 * ```
 */
export function createStaticSaltProvider(o: StaticSaltProviderOptions): SaltProvider {
  // An empty key would make every pseudonym computable by anyone: a wiring error, not a setting.
  if (o.secret === '') throw new RangeError('the static salt provider needs PSEUDONYM_SALT: set it, or pass the salt provider of SALT_SOURCE (gateway, clickhouse) to the edge');
  let master: Promise<CryptoKey> | undefined;
  return {
    epochMs: o.epochMs,
    async saltFor(epoch) {
      const usableUntilMs = saltUsableUntil(epoch, o.epochMs, o.retentionEpochs);
      const current = saltEpoch(o.now(), o.epochMs);
      if (!Number.isSafeInteger(epoch) || o.now() >= usableUntilMs || epoch > current + 1) return { kind: 'expired' };
      master ??= crypto.subtle.importKey('raw', encoder.encode(o.secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
      const salt = new Uint8Array(await crypto.subtle.sign('HMAC', await master, encoder.encode(`tributary/pseudonym-salt/v1/${o.epochMs}/${epoch}`)));
      return { kind: 'ok', salt, usableUntilMs };
    },
  };
}
