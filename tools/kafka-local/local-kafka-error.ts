export type LocalKafkaErrorCode =
  | 'java_missing'
  | 'java_too_old'
  | 'maven_missing'
  | 'fetch_failed'
  | 'port_in_use'
  | 'format_failed'
  | 'broker_exited'
  | 'start_timeout'
  | 'stop_failed'
  | 'lock_timeout';

/**
 * Everything that can go wrong starting or stopping the local broker. The message always says
 * what to do next; `logFile` points at the broker's output when it has any.
 *
 * @example
 * try { await startLocalKafka() } catch (e) { if (e instanceof LocalKafkaError && e.code === 'java_missing') ... }
 */
export class LocalKafkaError extends Error {
  override readonly name = 'LocalKafkaError';
  readonly code: LocalKafkaErrorCode;
  readonly logFile: string | undefined;

  constructor(code: LocalKafkaErrorCode, message: string, options: { cause?: unknown; logFile?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.logFile = options.logFile;
  }
}

export const USE_EXISTING_BROKER_HINT = 'or set KAFKA_BROKERS=host:port to use an existing broker';
