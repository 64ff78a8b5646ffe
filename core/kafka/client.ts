import { Kafka, logLevel, type KafkaConfig, type LogEntry, type logCreator } from 'kafkajs';
import type { Logger } from '../log.ts';
import { kafkaSecurityConfig, type KafkaSecurity } from '../config/kafka-security.ts';

/** One kafkajs log line as our structured log: a snake_case `event` key and the level to log at. */
export interface KafkaLogLine {
  level: 'error' | 'warn' | 'info' | 'debug';
  fields: { event: string; [key: string]: unknown };
}

/** Where mapped kafkajs lines go: a pino logger (core processes) or the edge's `EdgeLog`. */
export type KafkaLogSink = (line: KafkaLogLine) => void;

/**
 * kafkajs messages we replace with our own event or a deliberate configuration, so they do
 * not alarm operators: the EoS warning of a producer with bounded retries (explained in
 * docs/OPERATIONS.md, logged once as `kafka_producer_retries_bounded` by the producer's
 * owner) and the v2 default-partitioner notice (every producer of ours names its partitioner).
 */
const REPLACED = [/^Limiting retries for the idempotent producer/, /^KafkaJS v2\.0\.0 switched default partitioner/];

/** Known kafkajs messages → our event names; anything else is `kafka_client_<level>`. */
const EVENTS: Array<[RegExp, string]> = [
  [/^Connection error/i, 'kafka_connection_error'],
  [/^Connection timeout/i, 'kafka_connection_timeout'],
  [/^Failed to connect to seed broker/i, 'kafka_broker_unreachable'],
  [/^Crash:/, 'kafka_consumer_crashed'],
  [/^Restarting the consumer/, 'kafka_consumer_restarting'],
  [/^Error when calling eachBatch/, 'kafka_each_batch_failed'],
  [/^Error when calling eachMessage/, 'kafka_each_message_failed'],
  [/^Failed to send messages/, 'kafka_send_failed'],
  [/^The group is rebalancing/, 'kafka_group_rebalancing'],
  [/^The coordinator is not aware of this member/, 'kafka_member_unknown'],
  [/^Response .*\(key: \d+, version: \d+\)/, 'kafka_request_failed'],
  [/^Request .*timed out/i, 'kafka_request_timeout'],
];

const LEVELS: Partial<Record<logLevel, KafkaLogLine['level']>> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** Extra fields kafkajs attaches that say nothing an operator needs (or repeat ours). */
const DROPPED_FIELDS = new Set(['timestamp', 'logger', 'message', 'stack', 'level', 'event']);

const snake = (key: string): string => key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();

/**
 * Maps one kafkajs log entry to a structured line, or `undefined` for the messages we replace
 * (see `REPLACED`). Extra fields keep their values under snake_case names.
 *
 * @example
 * kafkaLogLine({ namespace: 'Connection', level: logLevel.ERROR, label: 'ERROR', log: { timestamp: '', message: 'Connection error: connect ECONNREFUSED 127.0.0.1:9092', broker: '127.0.0.1:9092' } })
 * // { level: 'error', fields: { event: 'kafka_connection_error', kafka_namespace: 'Connection', message: '...', broker: '127.0.0.1:9092' } }
 */
export function kafkaLogLine(entry: LogEntry): KafkaLogLine | undefined {
  const message = String(entry.log.message ?? '');
  if (REPLACED.some((r) => r.test(message))) return undefined;
  const level = LEVELS[entry.level] ?? 'warn';
  const event = EVENTS.find(([r]) => r.test(message))?.[1] ?? `kafka_client_${level === 'warn' ? 'warning' : level}`;
  const fields: KafkaLogLine['fields'] = { event, kafka_namespace: entry.namespace, message };
  for (const [key, value] of Object.entries(entry.log)) {
    if (DROPPED_FIELDS.has(key) || value === undefined) continue;
    // kafkajs passes some errors as objects, which JSON would print as {}.
    fields[snake(key)] = value instanceof Error ? value.message : value;
  }
  return { level, fields };
}

/** A kafkajs `logCreator` that sends every entry through {@link kafkaLogLine} to `sink`. */
export function kafkaLogCreator(sink: KafkaLogSink): logCreator {
  return () => (entry) => {
    const line = kafkaLogLine(entry);
    if (line) sink(line);
  };
}

/** A {@link KafkaLogSink} writing to a pino logger. */
export function pinoKafkaLogSink(logger: Logger): KafkaLogSink {
  return ({ level, fields }) => logger[level](fields);
}

/**
 * Kafka client for our processes: kafkajs' own logs go through the structured log (never raw
 * JSON on stdout), at WARN and above.
 *
 * @example
 * const kafka = createKafka(['127.0.0.1:9092'], 'tributary', logger);
 */
export function createKafka(brokers: string[], clientId: string, logger: Logger, options: Pick<KafkaConfig, 'retry' | 'connectionTimeout'> & { security?: KafkaSecurity | undefined } = {}): Kafka {
  return createKafkaClient({ brokers, clientId, log: pinoKafkaLogSink(logger), ...options });
}

/** {@link createKafka} for callers whose log is not a pino logger (the edge's `EdgeLog`). */
export function createKafkaClient(o: KafkaClientOptions): Kafka {
  return new Kafka(kafkaClientConfig(o));
}

export type KafkaClientOptions = { brokers: string[]; clientId: string; log: KafkaLogSink; security?: KafkaSecurity | undefined } & Pick<KafkaConfig, 'retry' | 'connectionTimeout'>;

/** The kafkajs settings {@link createKafkaClient} builds its client with (TLS/SASL from `security`). */
export function kafkaClientConfig(o: KafkaClientOptions): KafkaConfig {
  return {
    ...kafkaSecurityConfig(o.security),
    clientId: o.clientId,
    brokers: o.brokers,
    logLevel: logLevel.WARN,
    logCreator: kafkaLogCreator(o.log),
    ...(o.retry ? { retry: o.retry } : {}),
    ...(o.connectionTimeout !== undefined ? { connectionTimeout: o.connectionTimeout } : {}),
  };
}
