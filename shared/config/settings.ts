/**
 * Every setting Tributary reads, once: its kind, default, bounds, the processes that read it,
 * whether it is a secret, and its line in README.md's configuration table (generated from this
 * file by `npm run docs:config`). To add a setting, add one entry here, read it where it is used
 * with the reader of its kind (readers.ts), and run `npm run docs:config`.
 */
import { CENTRAL, EDGES, defineSettings, oneOf, text, whole, type ProcessName } from './kinds.ts';

const SECOND = 1000;
const HOUR = 3_600_000;
export const DAY_MS = 24 * HOUR;
const KIB = 1024;
/** 100 years: beyond that "forever" (0) says what is meant. */
const MAX_RETENTION_DAYS = 36_500;

const NODE_EDGES: readonly ProcessName[] = ['edge-node', 'start'];
/** The edges that bound request bodies themselves (Workers leave it to the platform). */
const LIMITED_EDGES: readonly ProcessName[] = [...NODE_EDGES, 'edge-deno'];
const AGGREGATORS: readonly ProcessName[] = ['aggregator', 'start'];
const QUERY: readonly ProcessName[] = ['query-api', 'start'];
const WITH_CLICKHOUSE: readonly ProcessName[] = ['start', 'edge-node', 'gateway', 'aggregator', 'query-api', 'migrate', 'reset'];
const WITH_KAFKA: readonly ProcessName[] = ['start', 'edge-node', 'gateway', 'aggregator', 'reset'];
/** The processes whose Kafka clients take KAFKA_SSL / KAFKA_SASL_* (core/config/kafka-security.ts). */
const KAFKA_SECURITY: readonly ProcessName[] = ['start', 'edge-node', 'gateway', 'aggregator'];
const GATEWAY_CLIENTS: readonly ProcessName[] = ['edge-workers', 'edge-deno', 'edge-node'];
const EVERY_LONG_RUNNING: readonly ProcessName[] = ['start', 'edge-node', 'gateway', 'aggregator', 'query-api'];
const PORT_RANGE = { min: 0, max: 65535 };
const TOPIC = { pattern: /^[A-Za-z0-9._-]{1,249}$/, problem: 'is not a valid Kafka topic name', form: "use letters, digits, '.', '_' or '-'" };
const LISTEN_HOST = {
  default: '127.0.0.1',
  pattern: /^(\[?[0-9A-Fa-f:.]+\]?|[A-Za-z0-9.-]{1,253})$/,
  problem: 'is not an address to listen on',
  form: 'use an IP address or host name (127.0.0.1, the default, for this machine only; 0.0.0.0 for every interface)',
};
const retention = (defaultDays: number, sharesRowWith?: string) =>
  whole({ default: defaultDays, min: 0, max: MAX_RETENTION_DAYS, processes: ['migrate', 'start'], ...(sharesRowWith ? { sharesRowWith } : {}) });

export const SETTINGS = defineSettings({
  KAFKA_BROKERS: text('list', {
    processes: WITH_KAFKA,
    defaultDoc: 'unset: `start` runs a local broker',
    doc: '`host:port,...` of the Kafka cluster',
    parser: 'core/config/core-config.ts',
  }),
  KAFKA_SSL: text('string', {
    processes: KAFKA_SECURITY, defaultDoc: 'unset: plaintext, no authentication', parser: 'core/config/kafka-security.ts',
    doc: 'every Kafka client of `gateway`, `aggregator`, `edge` (each `EDGE_PROCESSES` worker too) and `start` with `KAFKA_BROKERS`: `KAFKA_SSL=true` for TLS to the brokers (system CAs), SASL mechanism `plain`, `scram-sha-256` or `scram-sha-512` with its user and password (a secret, never logged). `start` refuses them without `KAFKA_BROKERS` (its local broker is plaintext) ([docs/SECURITY.md](docs/SECURITY.md) "Kafka: who may produce")',
  }),
  KAFKA_SASL_MECHANISM: text('string', { processes: KAFKA_SECURITY, parser: 'core/config/kafka-security.ts', sharesRowWith: 'KAFKA_SSL' }),
  KAFKA_SASL_USERNAME: text('string', { processes: KAFKA_SECURITY, parser: 'core/config/kafka-security.ts', sharesRowWith: 'KAFKA_SSL' }),
  KAFKA_SASL_PASSWORD: text('string', { processes: KAFKA_SECURITY, secret: true, raw: true, parser: 'core/config/kafka-security.ts', sharesRowWith: 'KAFKA_SSL' }),
  CLICKHOUSE_URL: text('url', { processes: WITH_CLICKHOUSE, defaultDoc: 'unset: embedded chdb', doc: 'ClickHouse server over HTTP, e.g. `http://localhost:8123`' }),
  CLICKHOUSE_USER: text('string', { processes: WITH_CLICKHOUSE, defaultDoc: '—', doc: 'server credentials (never logged)' }),
  CLICKHOUSE_PASSWORD: text('string', { processes: WITH_CLICKHOUSE, secret: true, raw: true, defaultDoc: '—', sharesRowWith: 'CLICKHOUSE_USER' }),
  CLICKHOUSE_DATABASE: text('string', { processes: WITH_CLICKHOUSE, defaultDoc: '—', sharesRowWith: 'CLICKHOUSE_USER' }),
  CLICKHOUSE_PATH: text('path', { processes: WITH_CLICKHOUSE, default: './data/clickhouse', doc: 'data directory of the embedded engine' }),
  PORT: whole({ default: 8080, ...PORT_RANGE, processes: ['edge-node', 'edge-deno', 'start'], doc: 'edge HTTP port (Deno: `0` = any free port)' }),
  HOSTNAME: text('host', { processes: ['edge-deno'], default: '0.0.0.0', doc: 'Deno edge only: the address it listens on' }),
  EDGE_PROCESSES: whole({
    default: 1, min: 1, max: 256, processes: ['edge-node'],
    doc: '`tributary edge`: edge processes sharing `PORT` (node:cluster), each its own source with its own `/health`, all sharing the retry dedup store (docs/EDGE.md "Several processes")',
  }),
  DEDUP_WINDOW_MS: whole({
    default: HOUR, min: 0, max: 7 * DAY_MS, processes: EDGES, defaultDoc: '`3600000` (1 hour)',
    doc: 'a client retry (same site and `messageId`) within this time is not counted again, whichever edge process of the machine gets it, across restarts; `86400000` for 24 hours (disk ≈ 2 × window × events/s × 73 bytes, e.g. 12.6 GB at 1,000 events/s); `0` turns deduplication off (docs/EDGE.md "Deduplication", ADR 0010)',
  }),
  DEDUP_DIR: text('path', {
    processes: [...NODE_EDGES, 'reset'], default: './data/dedup',
    doc: "Node edges: the on-disk dedup store shared by the machine's edge processes (local disk); holds only retry marks, `tributary reset` deletes it",
  }),
  DEDUP_CAPACITY: whole({
    default: 100_000, min: 0, max: 10_000_000, processes: ['edge-deno'],
    doc: 'Deno edge only: messageIds remembered in memory per process (Node and Workers remember by `DEDUP_WINDOW_MS`)',
  }),
  QUERY_PORT: whole({ default: 8081, ...PORT_RANGE, processes: QUERY, doc: 'query API port' }),
  QUERY_HOST: text('host', {
    processes: QUERY, ...LISTEN_HOST,
    doc: 'address the query API listens on (`0.0.0.0`: every interface; then `METRICS_TOKEN` is required, and `TRIBUTARY_ENV=dev` without read keys refuses to start)',
  }),
  QUERY_READ_KEYS: text('list', {
    processes: QUERY, secret: true, defaultDoc: 'required by `query-api` outside dev', parser: 'core/config/read-keys.ts',
    doc: "`readKey:site+site,...`: each reader's secret key (≥ 24 characters of letters, digits, `._~+/=-`, e.g. `rk_$(openssl rand -hex 16)`) and the sites it may read, `*` for every site; sent as `Authorization: Bearer <key>`. Never a write key, never logged. Unset in dev (`tributary start`): the API answers without a key on loopback ([docs/SECURITY.md](docs/SECURITY.md) \"Readers\")",
  }),
  QUERY_MAX_EXECUTION_MS: whole({
    default: 10_000, min: 0, max: HOUR, processes: QUERY,
    doc: "limits of every ClickHouse query of the query API (`max_execution_time`, `max_memory_usage`, `max_result_rows`); a query over a limit answers `422 query_limit_exceeded`. `0` leaves that limit to the ClickHouse user's profile ([ADR 0014](docs/adr/0014-readers-are-principals.md))",
  }),
  QUERY_MAX_MEMORY_BYTES: whole({ default: 1024 ** 3, min: 0, max: 1024 ** 4, processes: QUERY, defaultDoc: '`1073741824` (1 GiB)', sharesRowWith: 'QUERY_MAX_EXECUTION_MS' }),
  QUERY_MAX_RESULT_ROWS: whole({ default: 100_000, min: 0, max: 100_000_000, processes: QUERY, sharesRowWith: 'QUERY_MAX_EXECUTION_MS' }),
  METRICS_PORT: whole({ default: 9464, ...PORT_RANGE, processes: ['aggregator'], doc: 'Prometheus `/metrics` of `tributary aggregator` (`start` serves metrics on the query API)' }),
  METRICS_HOST: text('host', { processes: ['aggregator'], ...LISTEN_HOST, doc: "address of `tributary aggregator`'s `/metrics` (not loopback: `METRICS_TOKEN` required)" }),
  METRICS_TOKEN: text('string', {
    processes: ['aggregator', 'query-api', 'start'], secret: true, defaultDoc: 'unset',
    pattern: /^[A-Za-z0-9._~+/=-]{16,}$/,
    form: 'use at least 16 characters of letters, digits, ".", "_", "~", "+", "/", "=", "-" (e.g. `openssl rand -hex 16`)',
    doc: 'when set, every `/metrics` (aggregator and query API) requires `Authorization: Bearer <token>` (≥ 16 characters; never logged); required when `METRICS_HOST` or `QUERY_HOST` is not a loopback address',
  }),
  GATEWAY_PORT: whole({ default: 8082, ...PORT_RANGE, processes: ['gateway'], doc: 'gateway port (`tributary gateway`)' }),
  GATEWAY_SIGNING_KEYS: text('list', {
    processes: ['gateway'], secret: true, defaultDoc: 'required by `gateway`', parser: 'core/config/gateway-keys.ts',
    doc: '`edgeId:secret,...` (secrets ≥ 32 characters, never logged); each Workers/Deno edge signs with its own, and may only send its own source ids (`do-<edgeId>-<shard>`, `deno-<edgeId>-<hex>`)',
  }),
  GATEWAY_EDGE_SITES: text('list', {
    processes: ['gateway'], defaultDoc: 'unset: every site', parser: 'core/config/gateway-keys.ts',
    doc: '`edgeId:site+site,...` (`*` = every site): the sites each gateway edge may write (`403 site_not_allowed` otherwise); when set, every edge of `GATEWAY_SIGNING_KEYS` must be listed ([ADR 0015](docs/adr/0015-edges-are-principals.md))',
  }),
  GATEWAY_URL: text('url', {
    processes: GATEWAY_CLIENTS, defaultDoc: 'required by Workers/Deno edges and `SALT_SOURCE=gateway`',
    doc: 'base URL of `tributary gateway` (`https://…`; plain http only for loopback or `TRIBUTARY_ENV=dev`) ([docs/DEPLOY-WORKERS.md](docs/DEPLOY-WORKERS.md))',
  }),
  EDGE_ID: text('string', {
    processes: GATEWAY_CLIENTS, defaultDoc: '`workers`, `deno`, `node`',
    doc: "this edge deployment's id at the gateway (listed with its secret in the gateway's `GATEWAY_SIGNING_KEYS`); Workers shard names are `<EDGE_ID>-<i>`",
  }),
  GATEWAY_SIGNING_KEY: text('string', {
    processes: GATEWAY_CLIENTS, secret: true, raw: true, defaultDoc: 'required with `GATEWAY_URL`',
    doc: "this edge's signing secret (≥ 32 characters, never logged; on Workers `wrangler secret put GATEWAY_SIGNING_KEY`)",
  }),
  WINDOW_SIZE_MS: whole({
    default: 60_000, min: SECOND, max: DAY_MS, processes: [...EDGES, 'aggregator'],
    divides: { of: DAY_MS, examples: '10000, 60000, 300000', why: 'so hour and day rollups line up' },
    doc: 'tumbling window size (must divide a day; ≥ 1000) — set the same on edge and aggregator',
  }),
  ALLOWED_LATENESS_MS: whole({ default: 5_000, min: 0, max: 7 * DAY_MS, processes: AGGREGATORS, doc: 'a window is final when watermark ≥ window end + this' }),
  CORRECTION_HORIZON_MS: whole({ default: DAY_MS, min: 0, max: 90 * DAY_MS, processes: [...AGGREGATORS, 'migrate'], doc: 'late partials within this produce corrections; older ones go to `late_partials`' }),
  IDLE_TIMEOUT_MS: whole({ default: 30_000, min: 100, max: DAY_MS, processes: AGGREGATORS, doc: 'a source silent this long stops holding the watermark back' }),
  SOURCE_DATA_TIMEOUT_MS: whole({
    default: 30_000, min: 100, max: DAY_MS, processes: AGGREGATORS,
    doc: 'a source that sent no data rows for this long stops holding the watermark back even while it sends heartbeats; one that never sent rows never holds it (heartbeats an hour behind no longer pin every window open). The trade-off and the rule when no source holds it: [docs/OPERATIONS.md](docs/OPERATIONS.md) "Watermark"',
  }),
  AGGREGATOR_CARDINALITY_CAP: whole({
    default: 1000, min: 1, max: 1_000_000, processes: AGGREGATORS,
    doc: 'distinct values per (window, site, dimension) the aggregator keeps, per input partition, whatever the edges sent; later values fold into `__other__` as at the edge (`CARDINALITY_CAP`). Which values are kept, what it costs in checkpoints, and when the rows may differ: [ADR 0017](docs/adr/0017-cardinality-caps-and-untrusted-envelopes.md)',
  }),
  EMIT_INTERVAL_MS: whole({ default: SECOND, min: 50, max: 60_000, processes: AGGREGATORS, doc: 'how often the aggregator writes provisional results' }),
  CATCHUP_EMIT_MAX_MS: whole({
    default: 10_000, min: 50, max: 600_000, processes: AGGREGATORS,
    doc: 'longest epoch of a partition that is behind its input (catch-up after an outage or restart): fewer, larger inserts (docs/OPERATIONS.md)',
  }),
  EMIT_MAX_ROWS: whole({
    default: 50_000, min: 100, max: 1_000_000, processes: AGGREGATORS,
    doc: 'an epoch is cut early at this many pending cells per partition: bounds aggregator memory (~540 bytes per cell) and insert size (see docs/OPERATIONS.md "Memory bounds")',
  }),
  PARTIALS_ROUTING: oneOf({
    processes: ['edge-node', 'start', 'gateway'], default: 'cell',
    values: [
      { value: 'source', meaning: 'one message per envelope, keyed by source' },
      { value: 'cell', meaning: 'split by cell across partitions, ADR 0008' },
    ],
    doc: 'how `tributary edge`, `start` and `gateway` send envelopes: `cell` (each envelope split by cell into one part per partition, so each cell is merged by one aggregator: fewer ClickHouse rows, a faster aggregator; ADR 0008) or `source` (one message keyed by source, as before)',
  }),
  PARTIALS_TOPIC: text('string', { processes: WITH_KAFKA, default: 'partials', ...TOPIC, doc: 'Kafka topics' }),
  REJECTED_TOPIC: text('string', { processes: WITH_KAFKA, default: 'rejected', ...TOPIC, sharesRowWith: 'PARTIALS_TOPIC' }),
  DEAD_LETTER_TOPIC: text('string', { processes: AGGREGATORS, default: 'partials.dlq', ...TOPIC, sharesRowWith: 'PARTIALS_TOPIC' }),
  AGGREGATOR_GROUP: text('string', { processes: [...AGGREGATORS, 'reset'], default: 'tributary-aggregator', doc: 'Kafka consumer group of the aggregators' }),
  AGGREGATOR_SESSION_TIMEOUT_MS: whole({ default: 30_000, min: 6_000, max: 300_000, processes: AGGREGATORS, doc: 'Kafka session timeout: how long a crashed aggregator (and its rejected-events sink) holds its partitions' }),
  AGGREGATOR_MAX_BYTES_PER_PARTITION: whole({ default: 1_048_576, min: KIB, max: 64 * 1_048_576, processes: AGGREGATORS, doc: 'largest fetch per partition (smaller = smaller epochs)' }),
  TRIBUTARY_ENV: oneOf({
    processes: [...EDGES, 'gateway', 'query-api'], default: 'production', defaultFor: { start: 'dev' },
    values: [{ value: 'dev', meaning: 'demo write key, insecure salt' }, { value: 'production' }],
    aliases: { development: 'dev', prod: 'production' },
    defaultDoc: '`production` (`start`: `dev`)',
    doc: '`dev` (or `development`) allows the demo write key and an insecure salt; `production` (or `prod`) requires real keys',
  }),
  TRIBUTARY_WRITE_KEYS: text('list', { processes: [...EDGES, 'query-api'], secret: true, defaultDoc: 'dev: `wk_demo:demo`', doc: '`writeKey:siteId,...`', parser: 'edge/config.ts' }),
  PSEUDONYM_SALT: text('string', {
    processes: EDGES, secret: true, raw: true, defaultDoc: 'required outside dev with `SALT_SOURCE=static`',
    doc: 'master secret the per-epoch pseudonym salts are derived from (a secret; never logged; see docs/EDGE.md "Salt epochs")',
  }),
  SALT_SOURCE: oneOf({
    processes: [...EDGES, 'gateway'], default: 'clickhouse', defaultFor: { 'edge-workers': 'gateway', 'edge-deno': 'gateway' },
    values: [
      { value: 'clickhouse', meaning: 'random salts kept in ClickHouse; Node processes' },
      { value: 'static', meaning: 'derived from PSEUDONYM_SALT' },
      { value: 'gateway', meaning: 'random salts served by `tributary gateway` at GATEWAY_URL' },
    ],
    defaultDoc: '`clickhouse` (Workers, Deno: `gateway`)',
    doc: '`tributary start` and `tributary edge`: `clickhouse` keeps random epoch salts in `pseudonym_salts` (deleted after retention; several `tributary edge` processes share them through a ClickHouse server at `CLICKHOUSE_URL`), `static` derives them from `PSEUDONYM_SALT`. `tributary gateway`: `clickhouse` serves those salts to edges at `GET /v1/salts/{epoch}`, `static` serves none. Workers/Deno edges and `tributary edge`: `gateway` fetches them from `GATEWAY_URL` (with `EDGE_ID`, `GATEWAY_SIGNING_KEY`), `static` derives them (docs/EDGE.md "Salt epochs")',
  }),
  SALT_EPOCH_MS: whole({
    default: DAY_MS, min: 60_000, max: 366 * DAY_MS, processes: [...EDGES, 'gateway'], defaultDoc: '`86400000` (a day)',
    doc: 'pseudonyms change every epoch ("unique users" = unique within an epoch); an epoch\'s salt is used until `SALT_RETENTION_EPOCHS` epochs after its start. Set the same on every edge and the gateway (an edge with another `SALT_EPOCH_MS` gets `409` from the gateway)',
  }),
  SALT_RETENTION_EPOCHS: whole({ default: 2, min: 1, max: 366, processes: [...EDGES, 'gateway'], sharesRowWith: 'SALT_EPOCH_MS' }),
  FLUSH_INTERVAL_MS: whole({
    default: SECOND, min: 10, max: 60_000, processes: EDGES,
    doc: 'edge flush cadence, how soon a waiting acknowledged request triggers a flush, heartbeat (≥ `FLUSH_INTERVAL_MS`), source watermark',
  }),
  COMMIT_DELAY_MS: whole({ default: 20, min: 0, max: 60_000, processes: EDGES, sharesRowWith: 'FLUSH_INTERVAL_MS' }),
  HEARTBEAT_MS: whole({ default: 5_000, min: 100, max: 600_000, processes: EDGES, sharesRowWith: 'FLUSH_INTERVAL_MS' }),
  WATERMARK_DELAY_MS: whole({ default: SECOND, min: 0, max: DAY_MS, processes: EDGES, sharesRowWith: 'FLUSH_INTERVAL_MS' }),
  FLUSH_MAX_ROWS: whole({ default: 2_000, min: 1, max: 100_000, processes: EDGES, doc: 'rows that trigger an immediate flush; also the most rows per envelope' }),
  MAX_PENDING_ROWS: whole({
    default: 50_000, min: 1, max: 10_000_000, processes: EDGES,
    doc: 'rows buffered (unsent + unacknowledged; Workers: per shard) beyond which requests get `503 overloaded` with `Retry-After`',
  }),
  DO_SHARDS: whole({
    default: 8, min: 1, max: 256, processes: ['edge-workers'],
    doc: 'Workers edge: Durable Object shards events are spread over (hash of site and `messageId`); change it only with the gateway up ([docs/DEPLOY-WORKERS.md](docs/DEPLOY-WORKERS.md) "Choosing `DO_SHARDS`")',
  }),
  HEARTBEAT_TAIL_MS: whole({
    default: 2 * 60_000, min: 0, max: 7 * DAY_MS, processes: ['edge-workers'], defaultDoc: '2 × `WINDOW_SIZE_MS`',
    doc: 'Workers edge: how long a shard keeps sending watermark heartbeats after its last event, so its windows close promptly; then it sleeps',
  }),
  DIMENSIONS: text('list', {
    processes: EDGES, defaultDoc: '`path,country`', parser: 'edge/config.ts',
    doc: 'edge pre-aggregation dimensions (`path`, `country`, `device`, `browser`, `os`, `referrer_domain`, `is_bot`) and per-window cap (overflow → `__other__`)',
  }),
  CARDINALITY_CAP: whole({ default: 1_000, min: 1, max: 1_000_000, processes: EDGES, sharesRowWith: 'DIMENSIONS' }),
  BOT_POLICY: oneOf({
    processes: EDGES, default: 'drop',
    values: [
      { value: 'drop', meaning: 'bots are not aggregated, only counted' },
      { value: 'keep', meaning: 'aggregated; group by dimension is_bot' },
    ],
    doc: '`drop`: bots (isbot) are acknowledged but not aggregated, counted in `/health`; `keep`: aggregated, dimension `is_bot` tells them apart',
  }),
  PATH_QUERY_ALLOWLIST: text('list', {
    processes: EDGES, default: 'utm_source,utm_medium,utm_campaign', parser: 'edge/config.ts',
    doc: 'query parameters kept in the `path` dimension (`none`: none)',
  }),
  PATH_SECRET_PATTERNS: text('list', {
    processes: [...EDGES, 'gateway'], parser: 'shared/privacy/scrub.ts',
    defaultDoc: '`reset/* password-reset/* reset-password/* magic-link/* invite/* verify/* confirm/* activate/* unsubscribe/* token/* random (?:tok\\|sk\\|rk\\|pk\\|whsec\\|sess\\|ghp\\|gho\\|ghs\\|ghu\\|ghr\\|github_pat)_[A-Za-z0-9_]+ xox[abprs]-[A-Za-z0-9-]+`',
    doc: 'segments replaced by `[secret]` in everything that leaves an edge (space-separated: `name/*` = the segment after `name` unless a plain word, `random` = long random tokens, else a regular expression for a whole segment; `none`: none). Set the same on edges and `tributary gateway`, which redacts rejected records with it ([docs/EDGE.md](docs/EDGE.md) "What is scrubbed")',
  }),
  MAX_BODY_BYTES: whole({ default: 512 * KIB, min: KIB, max: 64 * KIB * KIB, processes: EDGES, defaultDoc: '512 KiB', doc: 'ingest limits' }),
  MAX_EVENTS_PER_BATCH: whole({ default: 500, min: 1, max: 100_000, processes: EDGES, defaultDoc: '500', sharesRowWith: 'MAX_BODY_BYTES' }),
  MAX_EVENT_BYTES: whole({ default: 32 * KIB, min: 256, max: 16 * KIB * KIB, processes: EDGES, defaultDoc: '32 KiB', sharesRowWith: 'MAX_BODY_BYTES' }),
  MAX_FUTURE_SKEW_MS: whole({
    default: 5 * 60_000, min: 0, max: DAY_MS, processes: EDGES,
    doc: 'event times later than arrival + this are clamped to it (≤ `SALT_EPOCH_MS`; docs/EDGE.md)',
  }),
  HEADERS_TIMEOUT_MS: whole({
    default: 10_000, min: 100, max: 600_000, processes: NODE_EDGES,
    doc: 'Node edge: headers, then the whole body (`BODY_TIMEOUT_MS`), must arrive within these times (else `408`, connection closed); Deno edge: the body only (`408 body_timeout`), headers are Deno.serve\'s own',
  }),
  BODY_TIMEOUT_MS: whole({ default: 15_000, min: 100, max: 600_000, processes: LIMITED_EDGES, sharesRowWith: 'HEADERS_TIMEOUT_MS' }),
  MAX_CONNECTIONS: whole({
    default: 4096, min: 1, max: 1_000_000, processes: LIMITED_EDGES,
    doc: 'Node and Deno edges, per process: open connections (Deno: request bodies being read) and (`MAX_INFLIGHT_BODY_BYTES`, default 64 MiB, at least `MAX_BODY_BYTES`) request-body bytes held at once; past either, `503 overloaded` with `Retry-After` ([docs/EDGE.md](docs/EDGE.md) "Limits")',
  }),
  MAX_INFLIGHT_BODY_BYTES: whole({ default: 64 * KIB * KIB, min: 64 * KIB, max: 16 * KIB * KIB * KIB, processes: LIMITED_EDGES, sharesRowWith: 'MAX_CONNECTIONS' }),
  COUNTRY_HEADER: text('string', {
    processes: EDGES, defaultDoc: 'unset (Workers: `request.cf.country`)',
    pattern: /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, problem: 'is not a valid HTTP header name (example: CF-IPCountry or X-Country-Code)',
    doc: 'trusted proxy header carrying the ISO country',
  }),
  TRIBUTARY_CACHE_DIR: text('path', { processes: ['local-kafka', 'start', 'reset'], defaultDoc: '`~/.cache/tributary`', doc: 'Kafka jars and local broker data' }),
  TRIBUTARY_KAFKA_PORT: whole({
    default: 9092, min: 1, max: 65534, processes: ['local-kafka', 'start', 'reset'],
    doc: 'port of the local broker of `tributary start` / `tributary kafka start` (the controller uses port + 1)',
  }),
  SHUTDOWN_TIMEOUT_MS: whole({
    default: 10_000, min: SECOND, max: 600_000, processes: EVERY_LONG_RUNNING,
    doc: 'after SIGTERM/SIGINT, a process still closing this long logs what is open (`shutdown_deadline_exceeded`) and exits',
  }),
  LOG_LEVEL: oneOf({
    processes: [...CENTRAL], default: 'info',
    values: [{ value: 'fatal' }, { value: 'error' }, { value: 'warn' }, { value: 'info' }, { value: 'debug' }, { value: 'trace' }, { value: 'silent' }],
    doc: 'pino log level: `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`',
  }),
  RETENTION_MINUTE_DAYS: {
    ...retention(30),
    doc: 'days `agg_minute`, `agg_hour`, `agg_day`, `late_partials`, `rejected_events` keep rows (0 = forever); applied as table TTLs by `tributary migrate` and `start` ([ADR 0005](docs/adr/0005-clickhouse-schema-order-partition-ttl.md))',
  },
  RETENTION_HOUR_DAYS: retention(400, 'RETENTION_MINUTE_DAYS'),
  RETENTION_DAY_DAYS: retention(0, 'RETENTION_MINUTE_DAYS'),
  RETENTION_LATE_DAYS: retention(30, 'RETENTION_MINUTE_DAYS'),
  RETENTION_REJECTED_DAYS: retention(30, 'RETENTION_MINUTE_DAYS'),
});

export type SettingName = keyof typeof SETTINGS;

/** Every setting, in README order. */
export const ALL_SETTINGS = Object.values(SETTINGS);

/** Names of the settings whose values are credentials (never printed). */
export const SECRET_SETTINGS: readonly string[] = ALL_SETTINGS.filter((s) => s.secret === true).map((s) => s.name);
