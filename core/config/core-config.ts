import type { PartialsRouting } from '../kafka/partials-router.ts';
import type { ClickHouseTarget } from '../clickhouse/client.ts';
import { ConfigErrors, readString, type Env } from './env.ts';
import { parseGatewayEdgeSites, parseGatewaySigningKeys, type EdgeSites } from './gateway-keys.ts';
import { parseReadKeys, type ReadKey } from './read-keys.ts';
import { parseKafkaSecurity, type KafkaSecurity } from './kafka-security.ts';
import type { QueryLimits } from '../query/limits.ts';
import { SETTINGS, checkSettings, readEnum, readListenHost, readText, readWhole, type Named, type WholeSetting } from '../../shared/config/index.ts';
import { urlForMessage } from '../../shared/secret-text.ts';
import { readPathSecretPatterns } from '../../shared/privacy/scrub.ts';

/** Settings of the central processes (gateway, aggregator, query API, CLI). */
export interface CoreConfig {
  /** undefined: `tributary start` runs a local broker. */
  kafkaBrokers: string[] | undefined;
  /** KAFKA_SSL, KAFKA_SASL_*: how the gateway and aggregator authenticate to Kafka; undefined: plaintext (never log the password). */
  kafkaSecurity: KafkaSecurity | undefined;
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
  /** `edgeSites`: `GATEWAY_EDGE_SITES`, the sites each edge may write; undefined: every site. */
  /** `pathSecretPatterns`: the edges' `PATH_SECRET_PATTERNS`, to redact rejected records as they do. */
  gateway: { port: number; signingKeys: Map<string, string>; edgeSites: Map<string, EdgeSites> | undefined; pathSecretPatterns: string };
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

/** Parses and validates the environment once, at start-up; every bad value gets its own message. */
export function parseCoreConfig(env: Env): ConfigResult {
  const errors = new ConfigErrors();
  const int = (s: Named<WholeSetting>): number => readWhole(env, s, errors.messages);
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
      ...optional('password', readText(env, SETTINGS.CLICKHOUSE_PASSWORD, errors.messages)),
    };
  } else {
    clickhouse = { kind: 'embedded', path: readText(env, SETTINGS.CLICKHOUSE_PATH, errors.messages) ?? './data/clickhouse' };
  }

  const windowSizeMs = int(SETTINGS.WINDOW_SIZE_MS);
  const gatewaySigningKeys = parseGatewaySigningKeys(readString(env, 'GATEWAY_SIGNING_KEYS'), errors);
  const config: CoreConfig = {
    kafkaBrokers,
    kafkaSecurity: parseKafkaSecurity(env, errors),
    clickhouse,
    edgePort: int(SETTINGS.PORT),
    edgeProcesses: int(SETTINGS.EDGE_PROCESSES),
    queryPort: int(SETTINGS.QUERY_PORT),
    queryHost: readListenHost(env, SETTINGS.QUERY_HOST, errors.messages),
    queryReadKeys: parseReadKeys(readString(env, 'QUERY_READ_KEYS'), readString(env, 'TRIBUTARY_WRITE_KEYS'), errors),
    queryLimits: {
      maxExecutionMs: int(SETTINGS.QUERY_MAX_EXECUTION_MS),
      maxMemoryBytes: int(SETTINGS.QUERY_MAX_MEMORY_BYTES),
      maxResultRows: int(SETTINGS.QUERY_MAX_RESULT_ROWS),
    },
    metricsPort: int(SETTINGS.METRICS_PORT),
    metricsHost: readListenHost(env, SETTINGS.METRICS_HOST, errors.messages),
    metricsToken: readText(env, SETTINGS.METRICS_TOKEN, errors.messages),
    saltSource: readEnum(env, SETTINGS.SALT_SOURCE, errors.messages),
    salts: {
      epochMs: int(SETTINGS.SALT_EPOCH_MS),
      retentionEpochs: int(SETTINGS.SALT_RETENTION_EPOCHS),
    },
    gateway: {
      port: int(SETTINGS.GATEWAY_PORT),
      signingKeys: gatewaySigningKeys,
      edgeSites: parseGatewayEdgeSites(readString(env, 'GATEWAY_EDGE_SITES'), gatewaySigningKeys, errors),
      pathSecretPatterns: pathSecretPatterns(env, errors),
    },
    topics: {
      partials: readText(env, SETTINGS.PARTIALS_TOPIC, errors.messages) ?? SETTINGS.PARTIALS_TOPIC.default ?? '',
      rejected: readText(env, SETTINGS.REJECTED_TOPIC, errors.messages) ?? SETTINGS.REJECTED_TOPIC.default ?? '',
      deadLetter: readText(env, SETTINGS.DEAD_LETTER_TOPIC, errors.messages) ?? SETTINGS.DEAD_LETTER_TOPIC.default ?? '',
      partialsRouting: readEnum(env, SETTINGS.PARTIALS_ROUTING, errors.messages),
    },
    aggregator: {
      groupId: readText(env, SETTINGS.AGGREGATOR_GROUP, errors.messages) ?? 'tributary-aggregator',
      windowSizeMs,
      allowedLatenessMs: int(SETTINGS.ALLOWED_LATENESS_MS),
      correctionHorizonMs: int(SETTINGS.CORRECTION_HORIZON_MS),
      idleTimeoutMs: int(SETTINGS.IDLE_TIMEOUT_MS),
      sourceDataTimeoutMs: int(SETTINGS.SOURCE_DATA_TIMEOUT_MS),
      cardinalityCap: int(SETTINGS.AGGREGATOR_CARDINALITY_CAP),
      emitIntervalMs: int(SETTINGS.EMIT_INTERVAL_MS),
      emitMaxRows: int(SETTINGS.EMIT_MAX_ROWS),
      catchUpEmitMaxMs: int(SETTINGS.CATCHUP_EMIT_MAX_MS),
      sessionTimeoutMs: int(SETTINGS.AGGREGATOR_SESSION_TIMEOUT_MS),
      maxBytesPerPartition: int(SETTINGS.AGGREGATOR_MAX_BYTES_PER_PARTITION),
    },
    retention: {
      minuteDays: int(SETTINGS.RETENTION_MINUTE_DAYS),
      hourDays: int(SETTINGS.RETENTION_HOUR_DAYS),
      dayDays: int(SETTINGS.RETENTION_DAY_DAYS),
      lateDays: int(SETTINGS.RETENTION_LATE_DAYS),
      rejectedDays: int(SETTINGS.RETENTION_REJECTED_DAYS),
    },
    shutdownTimeoutMs: int(SETTINGS.SHUTDOWN_TIMEOUT_MS),
    dedupDir: readText(env, SETTINGS.DEDUP_DIR, errors.messages) ?? './data/dedup',
  };
  errors.messages.push(
    ...checkSettings({
      WINDOW_SIZE_MS: windowSizeMs,
      SALT_EPOCH_MS: config.salts.epochMs,
      QUERY_HOST: config.queryHost,
      METRICS_HOST: config.metricsHost,
      METRICS_TOKEN: config.metricsToken,
      CORRECTION_HORIZON_MS: config.aggregator.correctionHorizonMs,
      RETENTION_MINUTE_DAYS: config.retention.minuteDays,
      RETENTION_HOUR_DAYS: config.retention.hourDays,
      RETENTION_DAY_DAYS: config.retention.dayDays,
    }),
  );
  return errors.messages.length > 0 ? { ok: false, errors: errors.messages } : { ok: true, config };
}


function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

/** Same variable, default and parser as the edge's (edge/config.ts). */
function pathSecretPatterns(env: Env, errors: ConfigErrors): string {
  const messages: string[] = [];
  const patterns = readPathSecretPatterns(env, messages);
  for (const m of messages) errors.add(m);
  return patterns;
}
