/**
 * Edge collector configuration, parsed from a flat string map so the same code reads
 * `process.env` (Node), wrangler `vars` (Workers) and `Deno.env.toObject()`.
 */

import { DEFAULT_PATH_SECRET_PATTERNS, parsePathSecretPatterns } from './pipeline/scrub.ts';

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
  /** Node: the whole body must arrive within this long of the headers (else `408 body_timeout`); with `MAX_BODY_BYTES` it sets a minimum average upload rate. */
  bodyTimeoutMs: number;
  /** Node: open connections per edge process beyond which a new one is answered `503 overloaded` and closed. */
  maxConnections: number;
  /** Node: request-body bytes held in memory at once per edge process (declared lengths reserved up front) beyond which a request is answered `503 overloaded`. */
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
const DAY_MS = 86_400_000;
const KIB = 1024;

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
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(env, name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
      errors.push(`${name}=${JSON.stringify(raw)} is not valid: expected a whole number from ${min} to ${max} (default ${fallback})`);
      return fallback;
    }
    return value;
  };

  const envName = read(env, 'TRIBUTARY_ENV') ?? 'production';
  let mode: EdgeConfig['env'] = 'production';
  if (envName === 'dev' || envName === 'development') mode = 'dev';
  else if (envName !== 'production' && envName !== 'prod') {
    errors.push(`TRIBUTARY_ENV=${JSON.stringify(envName)} is not valid: use "dev" (demo write key, insecure salt) or "production"`);
  }

  const writeKeys = parseWriteKeys(read(env, 'TRIBUTARY_WRITE_KEYS'), mode, errors);
  const windowSizeMs = int('WINDOW_SIZE_MS', 60_000, 1000, DAY_MS);
  if (DAY_MS % windowSizeMs !== 0) {
    errors.push(`WINDOW_SIZE_MS=${windowSizeMs} must divide a day evenly (e.g. 10000, 60000, 300000) so hour and day rollups line up`);
  }
  const config: EdgeConfig = {
    env: mode,
    writeKeys,
    windowSizeMs,
    flushIntervalMs: int('FLUSH_INTERVAL_MS', 1000, 10, 60_000),
    commitDelayMs: int('COMMIT_DELAY_MS', 20, 0, 60_000),
    heartbeatMs: int('HEARTBEAT_MS', 5000, 100, 600_000),
    watermarkDelayMs: int('WATERMARK_DELAY_MS', 1000, 0, DAY_MS),
    flushMaxRows: int('FLUSH_MAX_ROWS', 2000, 1, 100_000),
    maxPendingRows: int('MAX_PENDING_ROWS', 50_000, 1, 10_000_000),
    dimensions: parseDimensions(read(env, 'DIMENSIONS'), errors),
    cardinalityCap: int('CARDINALITY_CAP', 1000, 1, 1_000_000),
    maxBodyBytes: int('MAX_BODY_BYTES', 512 * KIB, 1 * KIB, 64 * KIB * KIB),
    maxEventsPerBatch: int('MAX_EVENTS_PER_BATCH', 500, 1, 100_000),
    maxEventBytes: int('MAX_EVENT_BYTES', 32 * KIB, 256, 16 * KIB * KIB),
    maxFutureSkewMs: int('MAX_FUTURE_SKEW_MS', 5 * 60_000, 0, DAY_MS),
    headersTimeoutMs: int('HEADERS_TIMEOUT_MS', 10_000, 100, 600_000),
    bodyTimeoutMs: int('BODY_TIMEOUT_MS', 15_000, 100, 600_000),
    maxConnections: int('MAX_CONNECTIONS', 4096, 1, 1_000_000),
    maxInflightBodyBytes: int('MAX_INFLIGHT_BODY_BYTES', 64 * KIB * KIB, 64 * KIB, 16 * KIB * KIB * KIB),
    dedupWindowMs: int('DEDUP_WINDOW_MS', 3_600_000, 0, 7 * DAY_MS),
    dedupDir: read(env, 'DEDUP_DIR') ?? './data/dedup',
    dedupCapacity: int('DEDUP_CAPACITY', 100_000, 0, 10_000_000),
    countryHeader: parseHeaderName(read(env, 'COUNTRY_HEADER'), errors),
    pseudonymSalt: parseSalt(env, mode, o.pseudonymSaltRequired ?? true, errors),
    saltEpochMs: int('SALT_EPOCH_MS', DAY_MS, 60_000, 366 * DAY_MS),
    saltRetentionEpochs: int('SALT_RETENTION_EPOCHS', 2, 1, 366),
    botPolicy: parseBotPolicy(read(env, 'BOT_POLICY'), errors),
    pathQueryAllowlist: parseQueryAllowlist(read(env, 'PATH_QUERY_ALLOWLIST'), errors),
    pathSecretPatterns: readPathSecretPatterns(env, errors),
  };
  if (config.maxInflightBodyBytes < config.maxBodyBytes) {
    errors.push(`MAX_INFLIGHT_BODY_BYTES=${config.maxInflightBodyBytes} is smaller than MAX_BODY_BYTES=${config.maxBodyBytes}: a request of the largest allowed size could never be read; raise MAX_INFLIGHT_BODY_BYTES`);
  }
  // (A window size that does not divide a day is already reported above.)
  if (DAY_MS % windowSizeMs === 0 && config.saltEpochMs % windowSizeMs !== 0) {
    errors.push(`SALT_EPOCH_MS=${config.saltEpochMs} must be a multiple of WINDOW_SIZE_MS=${windowSizeMs}: a window must not span two salt epochs, or one user would count twice in it`);
  }
  if (config.saltEpochMs < config.maxFutureSkewMs) {
    errors.push(`SALT_EPOCH_MS=${config.saltEpochMs} must be at least MAX_FUTURE_SKEW_MS=${config.maxFutureSkewMs}: event times clamped into the future must fall at most one epoch ahead`);
  }
  if (config.heartbeatMs < config.flushIntervalMs) {
    errors.push(`HEARTBEAT_MS=${config.heartbeatMs} must be at least FLUSH_INTERVAL_MS=${config.flushIntervalMs}: heartbeats are only sent between flushes`);
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, config };
}

function read(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw.trim() === '' ? undefined : raw.trim();
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

/** `PATH_SECRET_PATTERNS` (edge/pipeline/scrub.ts); the gateway reads it with the same function. */
export function readPathSecretPatterns(env: Env, errors: string[]): string {
  const r = parsePathSecretPatterns(read(env, 'PATH_SECRET_PATTERNS'));
  if (r.ok) return r.patterns.source;
  errors.push(...r.errors);
  return DEFAULT_PATH_SECRET_PATTERNS;
}

function parseBotPolicy(raw: string | undefined, errors: string[]): BotPolicy {
  if (raw === undefined) return 'drop';
  const v = raw.toLowerCase();
  if (v === 'drop' || v === 'keep') return v;
  errors.push(`BOT_POLICY=${JSON.stringify(raw)} is not valid: use "drop" (bots are not aggregated, only counted) or "keep" (aggregated; group by dimension is_bot)`);
  return 'drop';
}

const DEFAULT_QUERY_ALLOWLIST = ['utm_source', 'utm_medium', 'utm_campaign'];

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

function parseHeaderName(raw: string | undefined, errors: string[]): string | undefined {
  if (raw === undefined) return undefined;
  if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(raw)) {
    errors.push(`COUNTRY_HEADER=${JSON.stringify(raw)} is not a valid HTTP header name (example: CF-IPCountry or X-Country-Code)`);
    return undefined;
  }
  return raw.toLowerCase();
}

function parseSalt(env: Env, mode: EdgeConfig['env'], required: boolean, errors: string[]): string {
  // The value itself never appears in a message: it is the key that makes pseudonyms private.
  const raw = env.PSEUDONYM_SALT;
  if (raw === undefined || raw === '') {
    if (mode === 'dev') return DEV_PSEUDONYM_SALT;
    if (!required) return '';
    errors.push('PSEUDONYM_SALT is required outside dev: set it to a random secret of at least 16 characters shared by all edges of this salt epoch (e.g. `openssl rand -hex 32`)');
    return '';
  }
  if (raw.length < 16) errors.push(`PSEUDONYM_SALT is too short (${raw.length} characters): use at least 16 random characters, e.g. \`openssl rand -hex 32\``);
  return raw;
}
