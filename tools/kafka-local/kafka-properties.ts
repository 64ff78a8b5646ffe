/**
 * Pure renderers for the local broker's config files (no I/O), so the broker settings the
 * aggregator's exactly-once path depends on are unit-tested.
 *
 * @example
 * writeFileSync(path, renderServerProperties({ port: 9092, controllerPort: 9093, logDir }));
 */

/** `offsets.topic.num.partitions`; start-up warms the group coordinator of each one. */
export const OFFSETS_TOPIC_PARTITIONS = 8;
/** `transaction.state.log.num.partitions`; start-up warms the transaction coordinator of each one. */
export const TRANSACTION_STATE_PARTITIONS = 8;

export interface ServerPropertiesInput {
  port: number;
  controllerPort: number;
  /** Kafka's `log.dirs`: partition data and the KRaft metadata log. Absolute path. */
  logDir: string;
  /** Partitions of auto-created topics. */
  numPartitions?: number;
}

export function renderServerProperties(input: ServerPropertiesInput): string {
  const { port, controllerPort, logDir } = input;
  const entries: Array<[string, string | number | boolean]> = [
    // Single-node KRaft: this process is both the only broker and the only controller.
    ['process.roles', 'broker,controller'],
    ['node.id', 1],
    ['controller.quorum.voters', `1@127.0.0.1:${controllerPort}`],
    ['listeners', `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`],
    ['advertised.listeners', `PLAINTEXT://127.0.0.1:${port}`],
    ['listener.security.protocol.map', 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT'],
    ['controller.listener.names', 'CONTROLLER'],
    ['inter.broker.listener.name', 'PLAINTEXT'],
    ['log.dirs', logDir],
    // With one broker, internal topics must not ask for more replicas/ISR than exist, or
    // group offsets and transactions (InitProducerId, sendOffsets) fail with
    // COORDINATOR_NOT_AVAILABLE / NOT_ENOUGH_REPLICAS.
    ['offsets.topic.replication.factor', 1],
    ['transaction.state.log.replication.factor', 1],
    ['transaction.state.log.min.isr', 1],
    ['default.replication.factor', 1],
    ['min.insync.replicas', 1],
    // Fewer internal partitions than the default 50: the first group/transaction on a cold
    // broker creates them, and 50 make that take seconds on a laptop.
    ['offsets.topic.num.partitions', OFFSETS_TOPIC_PARTITIONS],
    ['transaction.state.log.num.partitions', TRANSACTION_STATE_PARTITIONS],
    ['num.partitions', input.numPartitions ?? 4],
    ['auto.create.topics.enable', true],
    ['delete.topic.enable', true],
    // Tests start consumers constantly; the 3 s default delays every first join.
    ['group.initial.rebalance.delay.ms', 0],
    // Small-machine settings: fewer threads, a smaller log-cleaner buffer (default 128 MiB),
    // segments small enough that retention can actually free disk on a dev box.
    ['num.network.threads', 2],
    ['num.io.threads', 4],
    ['num.recovery.threads.per.data.dir', 1],
    ['background.threads', 4],
    ['log.cleaner.dedupe.buffer.size', 16 * 1024 * 1024],
    ['log.segment.bytes', 64 * 1024 * 1024],
    ['log.retention.hours', 72],
    ['log.retention.check.interval.ms', 300_000],
  ];
  const lines = entries.map(([key, value]) => `${key}=${escapePropertyValue(String(value))}`);
  return ['# Written by tributary (tools/kafka-local/local-broker.ts); rewritten on every start.', ...lines, ''].join('\n');
}

/**
 * log4j 1.x (reload4j) config: everything to stdout, which the launcher redirects to the log
 * file. Without one, reload4j prints "no appenders" and the broker's errors are lost.
 */
export function renderLog4jProperties(): string {
  return [
    'log4j.rootLogger=INFO, stdout',
    'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
    'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.logger.kafka.request.logger=WARN',
    'log4j.logger.state.change.logger=WARN',
    'log4j.logger.kafka.log.LogCleaner=WARN',
    'log4j.logger.org.apache.kafka.controller=INFO',
    '',
  ].join('\n');
}

/** Parses the `key=value` subset of Java properties that Kafka writes (meta.properties). */
export function parseProperties(text: string): Map<string, string> {
  const result = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    result.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return result;
}

/** The PLAINTEXT port a rendered server.properties listens on, if any. */
export function plaintextPortOf(serverProperties: string): number | undefined {
  const listeners = parseProperties(serverProperties).get('listeners') ?? '';
  const match = /PLAINTEXT:\/\/[^,:]*:(\d+)/.exec(listeners);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/**
 * A KRaft cluster id is a base64url-encoded 16-byte UUID (22 chars). Kafka's own generator
 * never starts one with '-', which command-line parsers would read as a flag.
 */
export function clusterIdFromBytes(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new RangeError(`cluster id needs 16 bytes, got ${bytes.length}`);
  const id = Buffer.from(bytes).toString('base64url');
  return id.startsWith('-') ? `A${id.slice(1)}` : id;
}

function escapePropertyValue(value: string): string {
  // Java properties treat backslash as an escape: Windows paths must be doubled.
  return value.replace(/\\/g, '\\\\');
}
