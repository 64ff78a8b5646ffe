import type { PartialsRouting } from '../kafka/partials-router.ts';
import type { ClickHouseTarget } from '../clickhouse/client.ts';
import { ConfigErrors, readInt, readString, readTopicName, type Env } from './env.ts';
import { parseGatewaySigningKeys } from './gateway-keys.ts';
import { parseReadKeys, type ReadKey } from './read-keys.ts';
import type { QueryLimits } from '../query/limits.ts';
import { isLoopbackHost } from '../listen-address.ts';
import { urlForMessage } from '../../edge/secret-text.ts';
import { readPathSecretPatterns } from '../../edge/config.ts';

/** Settings of the central processes (gateway, aggregator, query API, CLI). */
export interface CoreConfig {
  /** undefined: `tributary start` runs a local broker. */
  kafkaBrokers: string[] | undefined;
  clickhouse: ClickHouseTarget;
  edgePort: number;
  /** `tributary edge`: edge processes on `edgePort` (node:cluster), 1 = a single process. */
  edgeProcesses: number;
  queryPort: number;
  /** QUERY_HOST: the query API's listening address, loopback unless configured. */
  queryHost: string;
  /** QUERY_READ_KEYS: each reader's secret key and its sites (never log these). */
  queryReadKeys: ReadKey[];
  /** Limits of every ClickHouse query the query API runs (QUERY_MAX_*). */
  queryLimits: QueryLimits;
  /**
   * Where pseudonym salts come from: `clickhouse` (default; random salts in pseudonym_salts,
   * deleted after retention; `tributary gateway` then serves them to Workers and Deno edges),
   * `static` (derived from PSEUDONYM_SALT; the gateway serves none) or `gateway` (`tributary
   * edge` only: fetched from the gateway at GATEWAY_URL).
   */
  saltSource: CoreSaltSource;
  /** Salt epochs as the edges have them (`SALT_EPOCH_MS`, `SALT_RETENTION_EPOCHS`): the gateway serves salts under these. */
  salts: { epochMs: number; retentionEpochs: number };
  /** Prometheus endpoint of `tributary aggregator` (the query API serves its own /metrics). */
  metricsPort: number;
  /** METRICS_HOST: where `tributary aggregator` serves /metrics; loopback unless configured. */
  metricsHost: string;
  /** METRICS_TOKEN: a bearer token every /metrics requires when set; required off loopback (never log it). */
  metricsToken: string | undefined;
  /** `tributary gateway`: listening port and each edge's signing secret (never log these). */
  /** `pathSecretPatterns`: the edges' `PATH_SECRET_PATTERNS`, to redact rejected records as they do. */
  gateway: { port: number; signingKeys: Map<string, string>; pathSecretPatterns: string };
  topics: { partials: string; rejected: string; deadLetter: string; partialsRouting: PartialsRouting };
  aggregator: {
    groupId: string;
    windowSizeMs: number;
    allowedLatenessMs: number;
    correctionHorizonMs: number;
    idleTimeoutMs: number;
    /** A source holds the watermark back only while it sent data rows within this long (heartbeats do not count). */
    sourceDataTimeoutMs: number;
    /** Distinct values per (window, site, dimension) the aggregator keeps before folding into `__other__`. */
    cardinalityCap: number;
    emitIntervalMs: number;
    emitMaxRows: number;
    /** Longest epoch of a partition that is behind (catch-up); see AggregatorRunnerOptions.catchUpEmitMaxMs. */
    catchUpEmitMaxMs: number;
    /** Kafka consumer session timeout: how long a dead aggregator holds its partitions. */
    sessionTimeoutMs: number;
    maxBytesPerPartition: number;
  };
  /** Days each table keeps rows (0 = forever), applied by `tributary migrate` as table TTLs (ADR 0005). */
  retention: RetentionDays;
  /** SIGTERM/SIGINT: a process still closing this long after the signal logs what is open and exits (ADR 0011). */
  shutdownTimeoutMs: number;
  /** The edge's persistent messageId store (`DEDUP_DIR`): local state that `tributary reset` removes. */
  dedupDir: string;
}

export type CoreSaltSource = 'clickhouse' | 'static' | 'gateway';

export interface RetentionDays {
  minuteDays: number;
  hourDays: number;
  dayDays: number;
  lateDays: number;
  rejectedDays: number;
}

export type ConfigResult = { ok: true; config: CoreConfig } | { ok: false; errors: string[] };

const HOUR = 3_600_000;
/** 100 years: beyond that "forever" (0) says what is meant. */
const MAX_RETENTION_DAYS = 36_500;

/** Parses and validates the environment once, at start-up; every bad value gets its own message. */
export function parseCoreConfig(env: Env): ConfigResult {
  const errors = new ConfigErrors();
  const brokersRaw = readString(env, 'KAFKA_BROKERS');
  let kafkaBrokers: string[] | undefined;
  if (brokersRaw !== undefined) {
    kafkaBrokers = brokersRaw.split(',').map((b) => b.trim()).filter(Boolean);
    for (const b of kafkaBrokers) {
      if (!/^[^\s:]+:\d{1,5}$/.test(b)) errors.add(`KAFKA_BROKERS entry ${b.includes('@') ? '(with credentials; not shown)' : JSON.stringify(b)} is not host:port (example: 127.0.0.1:9092,kafka2:9092)`);
    }
  }

  const url = readString(env, 'CLICKHOUSE_URL');
  let clickhouse: ClickHouseTarget;
  if (url !== undefined) {
    if (!/^https?:\/\//.test(url)) errors.add(`CLICKHOUSE_URL=${urlForMessage(url)} must be an http(s) URL such as http://localhost:8123`);
    clickhouse = {
      kind: 'server',
      url,
      ...optional('database', readString(env, 'CLICKHOUSE_DATABASE')),
      ...optional('username', readString(env, 'CLICKHOUSE_USER')),
      ...optional('password', env.CLICKHOUSE_PASSWORD),
    };
  } else {
    clickhouse = { kind: 'embedded', path: readString(env, 'CLICKHOUSE_PATH') ?? './data/clickhouse' };
  }

  const windowSizeMs = readInt(env, 'WINDOW_SIZE_MS', 60_000, errors, { min: 1000, max: 24 * HOUR });
  if (windowSizeMs > 0 && (24 * HOUR) % windowSizeMs !== 0) {
    errors.add(`WINDOW_SIZE_MS=${windowSizeMs} must divide a day evenly (e.g. 1000, 10000, 60000, 300000) so hour and day rollups line up`);
  }
  const config: CoreConfig = {
    kafkaBrokers,
    clickhouse,
    edgePort: readInt(env, 'PORT', 8080, errors, { min: 0, max: 65535 }),
    edgeProcesses: readInt(env, 'EDGE_PROCESSES', 1, errors, { min: 1, max: 256 }),
    queryPort: readInt(env, 'QUERY_PORT', 8081, errors, { min: 0, max: 65535 }),
    queryHost: readHost(env, 'QUERY_HOST', errors),
    queryReadKeys: parseReadKeys(readString(env, 'QUERY_READ_KEYS'), readString(env, 'TRIBUTARY_WRITE_KEYS'), errors),
    queryLimits: {
      maxExecutionMs: readInt(env, 'QUERY_MAX_EXECUTION_MS', 10_000, errors, { min: 0, max: 3_600_000 }),
      maxMemoryBytes: readInt(env, 'QUERY_MAX_MEMORY_BYTES', 1024 ** 3, errors, { min: 0, max: 1024 ** 4 }),
      maxResultRows: readInt(env, 'QUERY_MAX_RESULT_ROWS', 100_000, errors, { min: 0, max: 100_000_000 }),
    },
    metricsPort: readInt(env, 'METRICS_PORT', 9464, errors, { min: 0, max: 65535 }),
    metricsHost: readHost(env, 'METRICS_HOST', errors),
    metricsToken: readMetricsToken(env, errors),
    saltSource: readSaltSource(env, errors),
    // Same names, defaults and bounds as the edge's (edge/config.ts): both must agree.
    salts: {
      epochMs: readInt(env, 'SALT_EPOCH_MS', 24 * HOUR, errors, { min: 60_000, max: 366 * 24 * HOUR }),
      retentionEpochs: readInt(env, 'SALT_RETENTION_EPOCHS', 2, errors, { min: 1, max: 366 }),
    },
    gateway: {
      port: readInt(env, 'GATEWAY_PORT', 8082, errors, { min: 0, max: 65535 }),
      signingKeys: parseGatewaySigningKeys(readString(env, 'GATEWAY_SIGNING_KEYS'), errors),
      pathSecretPatterns: pathSecretPatterns(env, errors),
    },
    topics: {
      partials: readTopicName(env, 'PARTIALS_TOPIC', 'partials', errors),
      rejected: readTopicName(env, 'REJECTED_TOPIC', 'rejected', errors),
      deadLetter: readTopicName(env, 'DEAD_LETTER_TOPIC', 'partials.dlq', errors),
      partialsRouting: readPartialsRouting(env, errors),
    },
    aggregator: {
      groupId: readString(env, 'AGGREGATOR_GROUP') ?? 'tributary-aggregator',
      windowSizeMs,
      allowedLatenessMs: readInt(env, 'ALLOWED_LATENESS_MS', 5_000, errors, { min: 0, max: 7 * 24 * HOUR }),
      correctionHorizonMs: readInt(env, 'CORRECTION_HORIZON_MS', 24 * HOUR, errors, { min: 0, max: 90 * 24 * HOUR }),
      idleTimeoutMs: readInt(env, 'IDLE_TIMEOUT_MS', 30_000, errors, { min: 100, max: 24 * HOUR }),
      sourceDataTimeoutMs: readInt(env, 'SOURCE_DATA_TIMEOUT_MS', 30_000, errors, { min: 100, max: 24 * HOUR }),
      cardinalityCap: readInt(env, 'AGGREGATOR_CARDINALITY_CAP', 1000, errors, { min: 1, max: 1_000_000 }),
      emitIntervalMs: readInt(env, 'EMIT_INTERVAL_MS', 1_000, errors, { min: 50, max: 60_000 }),
      emitMaxRows: readInt(env, 'EMIT_MAX_ROWS', 50_000, errors, { min: 100, max: 1_000_000 }),
      catchUpEmitMaxMs: readInt(env, 'CATCHUP_EMIT_MAX_MS', 10_000, errors, { min: 50, max: 600_000 }),
      sessionTimeoutMs: readInt(env, 'AGGREGATOR_SESSION_TIMEOUT_MS', 30_000, errors, { min: 6_000, max: 300_000 }),
      maxBytesPerPartition: readInt(env, 'AGGREGATOR_MAX_BYTES_PER_PARTITION', 1_048_576, errors, { min: 1024, max: 64 * 1_048_576 }),
    },
    retention: {
      minuteDays: readInt(env, 'RETENTION_MINUTE_DAYS', 30, errors, { min: 0, max: MAX_RETENTION_DAYS }),
      hourDays: readInt(env, 'RETENTION_HOUR_DAYS', 400, errors, { min: 0, max: MAX_RETENTION_DAYS }),
      dayDays: readInt(env, 'RETENTION_DAY_DAYS', 0, errors, { min: 0, max: MAX_RETENTION_DAYS }),
      lateDays: readInt(env, 'RETENTION_LATE_DAYS', 30, errors, { min: 0, max: MAX_RETENTION_DAYS }),
      rejectedDays: readInt(env, 'RETENTION_REJECTED_DAYS', 30, errors, { min: 0, max: MAX_RETENTION_DAYS }),
    },
    shutdownTimeoutMs: readInt(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, errors, { min: 1_000, max: 600_000 }),
    dedupDir: readString(env, 'DEDUP_DIR') ?? './data/dedup',
  };
  // Prometheus text names topics, partitions and sites' traffic: never beyond loopback without a token.
  for (const [name, host] of [['QUERY_HOST', config.queryHost], ['METRICS_HOST', config.metricsHost]] as const) {
    if (!isLoopbackHost(host) && config.metricsToken === undefined) {
      errors.add(`${name}=${host} serves /metrics beyond this machine: set METRICS_TOKEN (at least 16 characters; Prometheus sends it as a bearer token) or keep ${name}=127.0.0.1`);
    }
  }
  if (windowSizeMs > 0 && (24 * HOUR) % windowSizeMs === 0 && config.salts.epochMs % windowSizeMs !== 0) {
    errors.add(`SALT_EPOCH_MS=${config.salts.epochMs} must be a multiple of WINDOW_SIZE_MS=${windowSizeMs}: a window must not span two salt epochs`);
  }
  // A correction delta for a window older than its table's TTL would be deleted at the next merge.
  const horizonMs = config.aggregator.correctionHorizonMs;
  for (const [name, days] of [['RETENTION_MINUTE_DAYS', config.retention.minuteDays], ['RETENTION_HOUR_DAYS', config.retention.hourDays], ['RETENTION_DAY_DAYS', config.retention.dayDays]] as const) {
    if (days > 0 && days * 24 * HOUR <= horizonMs) {
      errors.add(`${name}=${days} would delete windows that can still be corrected (CORRECTION_HORIZON_MS=${horizonMs}): keep rows longer than the correction horizon, or set 0 to keep them forever`);
    }
  }
  return errors.messages.length > 0 ? { ok: false, errors: errors.messages } : { ok: true, config };
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

function readHost(env: Env, name: string, errors: ConfigErrors): string {
  const value = readString(env, name) ?? '127.0.0.1';
  if (!/^(\[?[0-9A-Fa-f:.]+\]?|[A-Za-z0-9.-]{1,253})$/.test(value)) {
    errors.add(`${name}=${JSON.stringify(value.slice(0, 260))} is not an address to listen on: use an IP address or host name (127.0.0.1, the default, for this machine only; 0.0.0.0 for every interface)`);
    return '127.0.0.1';
  }
  // Node listens on `::1`, not `[::1]`.
  return value.replace(/^\[(.*)\]$/, '$1');
}

function readMetricsToken(env: Env, errors: ConfigErrors): string | undefined {
  const value = readString(env, 'METRICS_TOKEN');
  if (value !== undefined && (value.length < 16 || !/^[A-Za-z0-9._~+/=-]+$/.test(value))) {
    errors.add('METRICS_TOKEN is not valid: use at least 16 characters of letters, digits, ".", "_", "~", "+", "/", "=", "-" (e.g. `openssl rand -hex 16`)');
    return undefined;
  }
  return value;
}

function readPartialsRouting(env: Env, errors: ConfigErrors): PartialsRouting {
  const value = readString(env, 'PARTIALS_ROUTING') ?? 'cell';
  if (value === 'source' || value === 'cell') return value;
  errors.add(`PARTIALS_ROUTING=${JSON.stringify(value)} is not valid: use "source" (one message per envelope, keyed by source) or "cell" (split by cell across partitions, ADR 0008)`);
  return 'source';
}

function readSaltSource(env: Env, errors: ConfigErrors): CoreSaltSource {
  const value = readString(env, 'SALT_SOURCE') ?? 'clickhouse';
  if (value === 'clickhouse' || value === 'static' || value === 'gateway') return value;
  errors.add(`SALT_SOURCE=${JSON.stringify(value)} is not valid: use "clickhouse" (random salts kept in ClickHouse), "static" (derived from PSEUDONYM_SALT) or, for \`tributary edge\`, "gateway" (fetched from GATEWAY_URL)`);
  return 'clickhouse';
}

/** Same variable, default and parser as the edge's (edge/config.ts). */
function pathSecretPatterns(env: Env, errors: ConfigErrors): string {
  const messages: string[] = [];
  const patterns = readPathSecretPatterns(env, messages);
  for (const m of messages) errors.add(m);
  return patterns;
}
