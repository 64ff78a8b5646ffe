/**
 * Edge collector configuration, parsed from a flat string map so the same code reads
 * `process.env` (Node), wrangler `vars` (Workers) and `Deno.env.toObject()`.
 */

import { SETTINGS, checkSettings, readEnum, readText, readTrimmed, readWhole, type Named, type WholeSetting } from '../shared/config/index.ts';
import { readPathSecretPatterns } from '../shared/privacy/scrub.ts';

/** Dimensions the accumulator can group by (docs/EDGE.md "What is aggregated"). */
export const SUPPORTED_DIMENSIONS = ['path', 'country', 'device', 'browser', 'os', 'referrer_domain', 'is_bot'] as const;
export type DimensionName = (typeof SUPPORTED_DIMENSIONS)[number];

/** `drop`: bots' events are acknowledged but not aggregated (counted in stats); `keep`: aggregated, see dimension `is_bot`. */
export type BotPolicy = 'drop' | 'keep';

export interface EdgeConfig {
  /** `dev` relaxes required settings (demo write key, a fixed insecure salt). */
  env: 'dev' | 'production';
  /** write key -> site id. A null-prototype object: look keys up with `Object.hasOwn`. */
  writeKeys: Record<string, string>;
  windowSizeMs: number;
  flushIntervalMs: number;
  /** A request waiting for its acknowledgement triggers a flush this soon (0: wait for the timer). */
  commitDelayMs: number;
  heartbeatMs: number;
  watermarkDelayMs: number;
  /** Rows that trigger an immediate flush. */
  flushMaxRows: number;
  /** Rows buffered (unsent + unacknowledged) beyond which requests get 503. */
  maxPendingRows: number;
  dimensions: DimensionName[];
  /** Distinct values per (window, site, dimension) before folding into `__other__`. */
  cardinalityCap: number;
  /** Limit on the request body, after gzip decompression. */
  maxBodyBytes: number;
  maxEventsPerBatch: number;
  maxEventBytes: number;
  maxFutureSkewMs: number;
  /** Node: the request line and headers must arrive within this long of the connection's first byte (else `408 request_timeout`). */
  headersTimeoutMs: number;
  /** Node and Deno: the whole body must arrive within this long of the headers (else `408 body_timeout`); with `MAX_BODY_BYTES` it sets a minimum average upload rate. */
  bodyTimeoutMs: number;
  /** Node: open connections per edge process beyond which a new one is answered `503 overloaded` and closed. Deno: request bodies being read at once, beyond which one more is answered `503 overloaded`. */
  maxConnections: number;
  /** Node and Deno: request-body bytes held in memory at once per edge process (declared lengths reserved up front) beyond which a request is answered `503 overloaded`. */
  maxInflightBodyBytes: number;
  /**
   * How long an acknowledged (site, messageId) is remembered: a retry within this window is not
   * counted again (it is remembered between `dedupWindowMs` and twice that). 0 turns
   * deduplication off. Default one hour (docs/EDGE.md "Deduplication", ADR 0010).
   */
  dedupWindowMs: number;
  /** Node: the directory of the on-disk store shared by all edge processes of this machine. */
  dedupDir: string;
  /** In-memory deduplication only (Deno): messageIds remembered per process. */
  dedupCapacity: number;
  /** Name of a header set by a trusted proxy carrying an ISO country code. */
  countryHeader: string | undefined;
  /**
   * Master secret the static salt provider derives per-epoch salts from. Never log it. Empty
   * when the entry takes salts from elsewhere (`pseudonymSaltRequired: false`) and none is set.
   */
  pseudonymSalt: string;
  /** Length of a salt epoch (pseudonyms change between epochs). A multiple of `windowSizeMs`. */
  saltEpochMs: number;
  /** Epochs a salt stays usable: the current one and `saltRetentionEpochs - 1` before it. */
  saltRetentionEpochs: number;
  botPolicy: BotPolicy;
  /** Query parameters the `path` dimension keeps (all others are dropped). */
  pathQueryAllowlist: string[];
  /** Segments scrubbed as secrets from everything that leaves the edge: the validated text of `PATH_SECRET_PATTERNS` (see `createScrubber`). */
  pathSecretPatterns: string;
}

export type EdgeConfigResult = { ok: true; config: EdgeConfig } | { ok: false; errors: string[] };

/** Used only when TRIBUTARY_ENV=dev; pseudonyms made with it are not private. */
export const DEV_PSEUDONYM_SALT = 'tributary-dev-salt-not-secret';
const DEV_WRITE_KEYS = 'wk_demo:demo';

type Env = Record<string, string | undefined>;

export interface ParseEdgeConfigOptions {
  /**
   * Default true. False when the entry's salts come from a central store (SALT_SOURCE=gateway or
   * clickhouse): PSEUDONYM_SALT is then optional (still checked when set).
   */
  pseudonymSaltRequired?: boolean;
}

/**
 * Parses and validates the edge settings. Pure: no defaults are read from anywhere but `env`.
 * Every bad value gets its own message naming the variable and the accepted form.
 *
 * @example
 * ```ts
 * const r = parseEdgeConfig({ TRIBUTARY_ENV: 'dev' });
 * if (!r.ok) throw new Error(r.errors.join('\n'));
 * r.config.writeKeys; // { wk_demo: 'demo' }
 * ```
 */
export function parseEdgeConfig(env: Env, o: ParseEdgeConfigOptions = {}): EdgeConfigResult {
  const errors: string[] = [];
  const int = (s: Named<WholeSetting>): number => readWhole(env, s, errors);

  const mode: EdgeConfig['env'] = readEnum(env, SETTINGS.TRIBUTARY_ENV, errors);
  const writeKeys = parseWriteKeys(read(env, 'TRIBUTARY_WRITE_KEYS'), mode, errors);
  const config: EdgeConfig = {
    env: mode,
    writeKeys,
    windowSizeMs: int(SETTINGS.WINDOW_SIZE_MS),
    flushIntervalMs: int(SETTINGS.FLUSH_INTERVAL_MS),
    commitDelayMs: int(SETTINGS.COMMIT_DELAY_MS),
    heartbeatMs: int(SETTINGS.HEARTBEAT_MS),
    watermarkDelayMs: int(SETTINGS.WATERMARK_DELAY_MS),
    flushMaxRows: int(SETTINGS.FLUSH_MAX_ROWS),
    maxPendingRows: int(SETTINGS.MAX_PENDING_ROWS),
    dimensions: parseDimensions(read(env, 'DIMENSIONS'), errors),
    cardinalityCap: int(SETTINGS.CARDINALITY_CAP),
    maxBodyBytes: int(SETTINGS.MAX_BODY_BYTES),
    maxEventsPerBatch: int(SETTINGS.MAX_EVENTS_PER_BATCH),
    maxEventBytes: int(SETTINGS.MAX_EVENT_BYTES),
    maxFutureSkewMs: int(SETTINGS.MAX_FUTURE_SKEW_MS),
    headersTimeoutMs: int(SETTINGS.HEADERS_TIMEOUT_MS),
    bodyTimeoutMs: int(SETTINGS.BODY_TIMEOUT_MS),
    maxConnections: int(SETTINGS.MAX_CONNECTIONS),
    maxInflightBodyBytes: int(SETTINGS.MAX_INFLIGHT_BODY_BYTES),
    dedupWindowMs: int(SETTINGS.DEDUP_WINDOW_MS),
    dedupDir: readText(env, SETTINGS.DEDUP_DIR, errors) ?? './data/dedup',
    dedupCapacity: int(SETTINGS.DEDUP_CAPACITY),
    countryHeader: readText(env, SETTINGS.COUNTRY_HEADER, errors)?.toLowerCase(),
    pseudonymSalt: parseSalt(env, mode, o.pseudonymSaltRequired ?? true, errors),
    saltEpochMs: int(SETTINGS.SALT_EPOCH_MS),
    saltRetentionEpochs: int(SETTINGS.SALT_RETENTION_EPOCHS),
    botPolicy: readEnum(env, SETTINGS.BOT_POLICY, errors),
    pathQueryAllowlist: parseQueryAllowlist(read(env, 'PATH_QUERY_ALLOWLIST'), errors),
    pathSecretPatterns: readPathSecretPatterns(env, errors),
  };
  errors.push(
    ...checkSettings({
      WINDOW_SIZE_MS: config.windowSizeMs,
      SALT_EPOCH_MS: config.saltEpochMs,
      MAX_FUTURE_SKEW_MS: config.maxFutureSkewMs,
      HEARTBEAT_MS: config.heartbeatMs,
      FLUSH_INTERVAL_MS: config.flushIntervalMs,
      MAX_BODY_BYTES: config.maxBodyBytes,
      MAX_INFLIGHT_BODY_BYTES: config.maxInflightBodyBytes,
    }),
  );
  return errors.length > 0 ? { ok: false, errors } : { ok: true, config };
}

function read(env: Env, name: string): string | undefined {
  return readTrimmed(env, name);
}

function parseWriteKeys(raw: string | undefined, mode: EdgeConfig['env'], errors: string[]): Record<string, string> {
  const keys: Record<string, string> = Object.create(null) as Record<string, string>;
  const form = 'a comma list of writeKey:siteId pairs such as wk_demo:demo-site,wk_x:site-x (letters, digits, "_", "-", ".")';
  if (raw === undefined && mode === 'production') {
    errors.push(`TRIBUTARY_WRITE_KEYS is required outside dev: set it to ${form}`);
    return keys;
  }
  // Entries are named by position: a write key of a server-side source is a credential.
  const entryOf = new Map<string, number>();
  (raw ?? DEV_WRITE_KEYS).split(',').map((s) => s.trim()).filter((s) => s !== '').forEach((entry, i) => {
    const m = /^([A-Za-z0-9_.-]{1,256}):([A-Za-z0-9_.-]{1,128})$/.exec(entry);
    if (m === null) {
      errors.push(`TRIBUTARY_WRITE_KEYS entry ${i + 1} is not valid: expected ${form}`);
      return;
    }
    const [, key, site] = m as unknown as [string, string, string];
    const first = entryOf.get(key);
    if (first !== undefined) errors.push(`TRIBUTARY_WRITE_KEYS entry ${i + 1} repeats the write key of entry ${first}: each key maps to one site`);
    else entryOf.set(key, i + 1);
    keys[key] = site;
  });
  if (Object.keys(keys).length === 0 && raw !== undefined) errors.push(`TRIBUTARY_WRITE_KEYS has no entries: expected ${form}`);
  return keys;
}

const DEFAULT_QUERY_ALLOWLIST = (SETTINGS.PATH_QUERY_ALLOWLIST.default ?? '').split(',');

function parseQueryAllowlist(raw: string | undefined, errors: string[]): string[] {
  if (raw === undefined) return [...DEFAULT_QUERY_ALLOWLIST];
  if (raw.toLowerCase() === 'none') return [];
  const out: string[] = [];
  for (const name of raw.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
      errors.push(`PATH_QUERY_ALLOWLIST entry ${JSON.stringify(name)} is not valid: use a comma list of query parameter names (letters, digits, "_", "-", "."), or "none"`);
    } else if (!out.includes(name)) {
      out.push(name);
    }
  }
  if (out.length > 32) errors.push(`PATH_QUERY_ALLOWLIST has ${out.length} names; the limit is 32: every kept parameter multiplies the cardinality of the path dimension`);
  return out;
}

function parseDimensions(raw: string | undefined, errors: string[]): DimensionName[] {
  if (raw === undefined) return ['country', 'path'];
  const out: DimensionName[] = [];
  for (const name of raw.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    if (!(SUPPORTED_DIMENSIONS as readonly string[]).includes(name)) {
      errors.push(`DIMENSIONS entry ${JSON.stringify(name)} is not supported: use a comma list of ${SUPPORTED_DIMENSIONS.join(', ')}`);
    } else if (!out.includes(name as DimensionName)) {
      out.push(name as DimensionName);
    }
  }
  return out.sort();
}

function parseSalt(env: Env, mode: EdgeConfig['env'], required: boolean, errors: string[]): string {
  // The value itself never appears in a message: it is the key that makes pseudonyms private.
  const raw = readText(env, SETTINGS.PSEUDONYM_SALT, errors);
  if (raw === undefined) {
    if (mode === 'dev') return DEV_PSEUDONYM_SALT;
    if (!required) return '';
    errors.push('PSEUDONYM_SALT is required outside dev: set it to a random secret of at least 16 characters shared by all edges of this salt epoch (e.g. `openssl rand -hex 32`)');
    return '';
  }
  if (raw.length < 16) errors.push(`PSEUDONYM_SALT is too short (${raw.length} characters): use at least 16 random characters, e.g. \`openssl rand -hex 32\``);
  return raw;
}
