import { PermanentClickHouseError } from '../clickhouse/error-class.ts';
import type { Logger } from '../log.ts';
import { jitteredBackoffMs } from '../../shared/backoff.ts';
import { FatalAggregatorError } from './state-mismatch.ts';
import { errorMessage } from '../../shared/errors.ts';

/**
 * Whether a crashed Kafka consumer can be started again (ADR 0011 addendum).
 *
 * - `transient`: the broker or its group coordinator is unreachable, slow or busy (connection
 *   errors, retries exhausted while the broker was down, request and lock timeouts, coordinator
 *   not available or moving, a rebalance): restart the consumer after a backoff. Anything we do
 *   not recognize is transient too: a restart is safe (the epoch protocol restores every
 *   partition from its last confirmed commit) and the growing lag and the log say it repeats.
 * - `permanent`: no restart can help until a human changes something (authorization, SASL,
 *   a broker that lacks an API we need, a group configuration the broker refuses, our own state
 *   mismatch or a permanent ClickHouse error): the process stops and says what to do.
 */
export type ConsumerCrashClass =
  | { kind: 'transient'; reason: 'rebalance' | 'coordinator_unavailable' | 'timeout' | 'broker_unreachable' | 'retries_exhausted' | 'unknown'; message: string }
  | { kind: 'permanent'; reason: string; message: string; advice: string };

const AUTH = 'grant the consumer its ACLs (Read on the topic and the group, Describe on the cluster) or fix the credentials, then restart';
const CONFIG = 'the broker refuses this consumer group configuration: check AGGREGATOR_GROUP and AGGREGATOR_SESSION_TIMEOUT_MS against the broker limits (group.min/max.session.timeout.ms), then restart';
const VERSION = 'the broker does not support a request this client needs: use Kafka 2.4 or newer (README), then restart';

/** Broker error types (Kafka protocol) that no restart fixes. */
const PERMANENT_TYPES = new Map<string, string>([
  ['GROUP_AUTHORIZATION_FAILED', AUTH],
  ['TOPIC_AUTHORIZATION_FAILED', AUTH],
  ['CLUSTER_AUTHORIZATION_FAILED', AUTH],
  ['SASL_AUTHENTICATION_FAILED', AUTH],
  ['UNSUPPORTED_SASL_MECHANISM', AUTH],
  ['INVALID_GROUP_ID', CONFIG],
  ['INCONSISTENT_GROUP_PROTOCOL', CONFIG],
  ['INVALID_SESSION_TIMEOUT', CONFIG],
  ['INVALID_CONFIG', CONFIG],
  ['UNSUPPORTED_VERSION', VERSION],
]);

/** kafkajs error classes that no restart fixes. */
const PERMANENT_NAMES = new Map<string, string>([
  ['KafkaJSSASLAuthenticationError', AUTH],
  ['KafkaJSServerDoesNotSupportApiKey', VERSION],
  ['KafkaJSNotImplemented', VERSION],
]);

const REBALANCE_TYPES = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'MEMBER_ID_REQUIRED']);
const COORDINATOR_TYPES = new Set(['GROUP_COORDINATOR_NOT_AVAILABLE', 'COORDINATOR_NOT_AVAILABLE', 'NOT_COORDINATOR_FOR_GROUP', 'NOT_COORDINATOR', 'GROUP_LOAD_IN_PROGRESS', 'COORDINATOR_LOAD_IN_PROGRESS']);
const TIMEOUT_NAMES = new Set(['KafkaJSRequestTimeoutError', 'KafkaJSTimeout', 'KafkaJSLockTimeout']);
const UNREACHABLE_NAMES = new Set(['KafkaJSConnectionError', 'KafkaJSConnectionClosedError', 'KafkaJSNoBrokerAvailableError', 'KafkaJSBrokerNotFound']);

/** The error and its causes, outermost first (kafkajs wraps retried errors in `cause`). */
function causeChain(err: unknown): Array<{ name: string | undefined; type: string | undefined }> {
  const chain: Array<{ name: string | undefined; type: string | undefined }> = [];
  for (let e: unknown = err; e !== null && typeof e === 'object' && chain.length < 8; ) {
    const { name, type, cause } = e as { name?: unknown; type?: unknown; cause?: unknown };
    chain.push({ name: typeof name === 'string' ? name : undefined, type: typeof type === 'string' ? type : undefined });
    if (cause === e) break;
    e = cause;
  }
  return chain;
}

/**
 * Classifies the error of a kafkajs consumer crash (the CRASH event's `payload.error`).
 *
 * @example
 * classifyConsumerCrash(Object.assign(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092'), { name: 'KafkaJSConnectionError' }));
 * // { kind: 'transient', reason: 'broker_unreachable', message: 'Connection error: ...' }
 */
export function classifyConsumerCrash(err: unknown): ConsumerCrashClass {
  const message = errorMessage(err);
  if (err instanceof FatalAggregatorError || err instanceof PermanentClickHouseError) return { kind: 'permanent', reason: err.name, message, advice: 'see the message' };
  const chain = causeChain(err);
  for (const { name, type } of chain) {
    const byType = type !== undefined ? PERMANENT_TYPES.get(type) : undefined;
    if (byType) return { kind: 'permanent', reason: type as string, message, advice: byType };
    const byName = name !== undefined ? PERMANENT_NAMES.get(name) : undefined;
    if (byName) return { kind: 'permanent', reason: name as string, message, advice: byName };
  }
  const has = (test: (link: { name: string | undefined; type: string | undefined }) => boolean): boolean => chain.some(test);
  if (has((l) => (l.type !== undefined && REBALANCE_TYPES.has(l.type)) || l.name === 'KafkaJSFetcherRebalanceError')) return { kind: 'transient', reason: 'rebalance', message };
  if (has((l) => (l.type !== undefined && COORDINATOR_TYPES.has(l.type)) || l.name === 'KafkaJSGroupCoordinatorNotFound')) return { kind: 'transient', reason: 'coordinator_unavailable', message };
  if (has((l) => (l.name !== undefined && TIMEOUT_NAMES.has(l.name)) || l.type === 'REQUEST_TIMED_OUT')) return { kind: 'transient', reason: 'timeout', message };
  if (has((l) => (l.name !== undefined && UNREACHABLE_NAMES.has(l.name)) || l.type === 'NETWORK_EXCEPTION')) return { kind: 'transient', reason: 'broker_unreachable', message };
  if (has((l) => l.name === 'KafkaJSNumberOfRetriesExceeded')) return { kind: 'transient', reason: 'retries_exhausted', message };
  return { kind: 'transient', reason: 'unknown', message };
}

export interface ConsumerRestartOptions {
  /** Starts the crashed consumer again; resolves once its run loop started (the group join follows). */
  restart(): Promise<void>;
  /** Called with a crash no restart can fix: the owner stops for good. */
  fatal(err: Error): void;
  /** Called at every crash, before the backoff: the owner gives up what the consumer held. */
  crashed?(): void;
  logger: Logger;
  /** Fields every log line carries (topic, group). */
  fields?: Record<string, unknown>;
  /** First restart delay (default 1 s); doubles per failed attempt, with jitter. */
  firstDelayMs?: number;
  /** Longest restart delay (default 15 s). */
  maxDelayMs?: number;
  random?: () => number;
  now?: () => number;
  timers?: { set(fn: () => void, ms: number): unknown; clear(handle: unknown): void };
}

/** What `down()` reports while the consumer is not consuming because it crashed. */
export interface ConsumerDown {
  /** When the first crash of this outage happened. */
  sinceMs: number;
  /** Crashes since the consumer last joined its group. */
  crashes: number;
  /** The last crash's message. */
  error: string;
}

export interface ConsumerRestarter {
  /** The consumer crashed and kafkajs does not restart it (or its run loop could not start). */
  crashed(err: unknown): void;
  /** The consumer joined its group: consuming again. */
  joined(): void;
  /** Set from a crash until the next group join. */
  down(): ConsumerDown | undefined;
  /**
   * No restart after this; cancels a pending one at once. A restart already under way is not
   * waited for (with the broker down it can take many seconds): the owner disconnects the
   * consumer, and a crash or join it still reports is ignored.
   */
  stop(): void;
}

const defaultTimers = {
  set: (fn: () => void, ms: number): unknown => setTimeout(fn, ms),
  clear: (handle: unknown): void => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Restarts a crashed Kafka consumer in process, with capped exponential backoff and jitter,
 * until it joins its group again: a broker outage of any length costs results latency, never
 * the process. Permanent errors (see {@link classifyConsumerCrash}) go to `fatal` instead.
 * Broker-free: the caller wires `restart` to kafkajs (core/aggregator/kafka-runner.ts).
 */
export function createConsumerRestarter(o: ConsumerRestartOptions): ConsumerRestarter {
  const firstMs = o.firstDelayMs ?? 1_000;
  const maxMs = Math.max(o.maxDelayMs ?? 15_000, firstMs);
  const now = o.now ?? Date.now;
  const timers = o.timers ?? defaultTimers;
  let stopped = false;
  let down: ConsumerDown | undefined;
  let pending: unknown;

  function restartNow(attempt: number): void {
    pending = undefined;
    if (stopped) return;
    o.restart().catch((err: unknown) => {
      if (stopped) return;
      o.logger.warn({ event: 'consumer_restart_failed', ...o.fields, attempt, err: errorMessage(err) });
      crashed(err);
    });
  }

  function crashed(err: unknown): void {
    if (stopped) return;
    const c = classifyConsumerCrash(err);
    o.crashed?.();
    if (c.kind === 'permanent') {
      const fatal = err instanceof FatalAggregatorError || err instanceof PermanentClickHouseError ? err : new Error(`the Kafka consumer stopped on an error no restart can fix (${c.reason}: ${c.message}). What to do: ${c.advice}`);
      o.fatal(fatal);
      return;
    }
    down = { sinceMs: down?.sinceMs ?? now(), crashes: (down?.crashes ?? 0) + 1, error: c.message };
    // A crash while a restart is already scheduled (kafkajs reports one crash per failed start) keeps that schedule.
    if (pending !== undefined) return;
    const attempt = down.crashes;
    const delayMs = jitteredBackoffMs(attempt, firstMs, maxMs, o.random);
    o.logger.warn({ event: 'consumer_restart_scheduled', ...o.fields, attempt, delay_ms: delayMs, reason: c.reason, err: c.message });
    pending = timers.set(() => restartNow(attempt), delayMs);
  }

  return {
    crashed,
    joined() {
      if (!down || stopped) return;
      o.logger.info({ event: 'consumer_recovered', ...o.fields, crashes: down.crashes, down_ms: now() - down.sinceMs });
      down = undefined;
    },
    down: () => (down ? { ...down } : undefined),
    stop() {
      stopped = true;
      if (pending !== undefined) timers.clear(pending);
      pending = undefined;
    },
  };
}
