import { KafkaJSConnectionError, KafkaJSGroupCoordinatorNotFound, KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError, KafkaJSRequestTimeoutError, KafkaJSSASLAuthenticationError } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { classifyConsumerCrash, createConsumerRestarter, type ConsumerRestartOptions } from '../../../core/aggregator/consumer-restart.ts';
import { missingCheckpoint } from '../../../core/aggregator/state-mismatch.ts';
import { classifyClickHouseError, PermanentClickHouseError } from '../../../core/clickhouse/error-class.ts';
import { silentLogger } from '../../../core/log.ts';
import { jitteredBackoffMs } from '../../../shared/backoff.ts';

// The restart policy of a crashed Kafka consumer (ADR 0011 addendum): which crashes restart,
// how long it waits, what stays fatal. The errors are kafkajs' own classes, shaped as kafkajs
// 2.2.4 raises them during a broker outage (a retrier wraps the error it gave up on in `cause`).

const refused = (): KafkaJSConnectionError => new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9092', { broker: '127.0.0.1:9092' });
/** kafkajs' constructors take a cause at runtime; its type declarations omit it. */
const wrapNonRetriable = (e: Error): Error => new (KafkaJSNonRetriableError as unknown as new (e: Error, o: { cause: Error }) => Error)(e, { cause: e });
/** kafkajs classes whose type declarations say they take no argument (at runtime they take the message). */
const withMessage = <E extends Error>(cls: new () => E, message: string): E => new (cls as unknown as new (m: string) => E)(message);
const protocolError = (type: string, code: number, retriable: boolean): Error => new KafkaJSProtocolError({ message: `broker answered ${type}`, type, code, retriable } as unknown as Error);

describe('classifyConsumerCrash', () => {
  it.each([
    ['a connection error', refused(), 'broker_unreachable'],
    ['retries exhausted on a connection error', new KafkaJSNumberOfRetriesExceeded(refused(), { retryCount: 5, retryTime: 9000 }), 'broker_unreachable'],
    ['a non-retriable wrapper of exhausted retries (kafkajs answers restart: false for some of these)', wrapNonRetriable(new KafkaJSNumberOfRetriesExceeded(refused(), { retryCount: 5, retryTime: 9000 })), 'broker_unreachable'],
    ['a request timeout', new KafkaJSRequestTimeoutError('Request Fetch(key: 1, version: 11) timed out'), 'timeout'],
    ['no group coordinator (a non-retriable kafkajs error)', withMessage(KafkaJSGroupCoordinatorNotFound, 'Failed to find group coordinator'), 'coordinator_unavailable'],
    ['a coordinator that is loading', wrapNonRetriable(protocolError('COORDINATOR_LOAD_IN_PROGRESS', 14, true)), 'coordinator_unavailable'],
    ['a rebalance', protocolError('REBALANCE_IN_PROGRESS', 27, false), 'rebalance'],
    ['retries exhausted on something else', new KafkaJSNumberOfRetriesExceeded(new Error('socket hang up'), { retryCount: 5, retryTime: 9000 }), 'retries_exhausted'],
    ['an error nobody recognizes', new TypeError("Cannot read properties of null (reading 'nodeId')"), 'unknown'],
  ])('restarts after %s', (_what, err, reason) => {
    expect(classifyConsumerCrash(err)).toMatchObject({ kind: 'transient', reason });
  });

  it.each([
    ['group authorization', protocolError('GROUP_AUTHORIZATION_FAILED', 30, false), 'GROUP_AUTHORIZATION_FAILED'],
    ['topic authorization behind a wrapper', wrapNonRetriable(protocolError('TOPIC_AUTHORIZATION_FAILED', 29, false)), 'TOPIC_AUTHORIZATION_FAILED'],
    ['SASL authentication', withMessage(KafkaJSSASLAuthenticationError, 'SASL PLAIN authentication failed'), 'KafkaJSSASLAuthenticationError'],
    ['a session timeout the broker refuses', protocolError('INVALID_SESSION_TIMEOUT', 26, false), 'INVALID_SESSION_TIMEOUT'],
  ])('stays fatal on %s, with what to do', (_what, err, reason) => {
    const c = classifyConsumerCrash(err);
    expect(c).toMatchObject({ kind: 'permanent', reason });
    expect(c.kind === 'permanent' && c.advice).toMatch(/then restart/);
  });

  it('keeps our own fatal errors fatal', () => {
    const mismatch = missingCheckpoint({ groupId: 'g', topic: 't', partition: 0 }, '10', { epoch: 3, checkpointId: 'c' });
    const permanent = new PermanentClickHouseError('a write', classifyClickHouseError(Object.assign(new Error('no table'), { code: '60' })) as Extract<ReturnType<typeof classifyClickHouseError>, { kind: 'permanent' }>);
    expect(classifyConsumerCrash(mismatch).kind).toBe('permanent');
    expect(classifyConsumerCrash(permanent).kind).toBe('permanent');
  });
});

describe('jitteredBackoffMs', () => {
  it('doubles from the first delay up to the cap, within the upper half of each step', () => {
    for (const random of [() => 0, () => 0.5, () => 0.999999]) {
      const delays = Array.from({ length: 12 }, (_, i) => jitteredBackoffMs(i + 1, 1_000, 15_000, random));
      delays.forEach((d, i) => {
        const base = Math.min(1_000 * 2 ** i, 15_000);
        expect(d).toBeGreaterThanOrEqual(base / 2);
        expect(d).toBeLessThanOrEqual(base);
      });
      expect(Math.max(...delays)).toBeLessThanOrEqual(15_000);
    }
    expect(jitteredBackoffMs(1, 1_000, 15_000, () => 0)).toBe(500);
    expect(jitteredBackoffMs(40, 1_000, 15_000, () => 0.999999)).toBe(15_000);
  });
});

/** Timers the test fires by hand, and a clock. */
function manualWorld() {
  const timers: Array<{ fn: () => void; ms: number; cleared: boolean }> = [];
  const lines: Array<Record<string, unknown>> = [];
  const logger = silentLogger();
  const capture = (level: string) => (obj: unknown) => {
    if (typeof obj === 'object' && obj !== null) lines.push({ level, ...(obj as Record<string, unknown>) });
  };
  const log = Object.assign(Object.create(logger) as typeof logger, { info: capture('info'), warn: capture('warn'), error: capture('error'), debug: () => undefined });
  const clock = { now: 1_000_000 };
  const calls = { restarts: 0, revokes: 0, fatal: [] as Error[] };
  let restartAnswer: () => Promise<void> = async () => undefined;
  const options: ConsumerRestartOptions = {
    restart: () => {
      calls.restarts++;
      return restartAnswer();
    },
    fatal: (err) => calls.fatal.push(err),
    crashed: () => calls.revokes++,
    logger: log,
    fields: { topic: 't', group: 'g' },
    firstDelayMs: 1_000,
    maxDelayMs: 8_000,
    random: () => 1,
    now: () => clock.now,
    timers: {
      set: (fn, ms) => {
        const t = { fn, ms, cleared: false };
        timers.push(t);
        return t;
      },
      clear: (handle) => {
        (handle as { cleared: boolean }).cleared = true;
      },
    },
  };
  /** Fires the oldest live timer. */
  const fire = async (): Promise<number> => {
    const t = timers.find((x) => !x.cleared);
    if (!t) throw new Error('no timer pending');
    t.cleared = true;
    clock.now += t.ms;
    t.fn();
    await new Promise((r) => setImmediate(r));
    return t.ms;
  };
  return {
    timers,
    lines,
    clock,
    calls,
    options,
    fire,
    pending: () => timers.filter((t) => !t.cleared).length,
    setRestart: (f: () => Promise<void>) => {
      restartAnswer = f;
    },
    events: (name: string) => lines.filter((l) => l.event === name),
  };
}

describe('createConsumerRestarter', () => {
  it('restarts after each transient crash with growing, capped delays and reports down until the join', async () => {
    const w = manualWorld();
    const r = createConsumerRestarter(w.options);
    expect(r.down()).toBeUndefined();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      r.crashed(new KafkaJSNumberOfRetriesExceeded(refused(), { retryCount: 5, retryTime: 9000 }));
      expect(r.down()).toMatchObject({ crashes: i + 1, sinceMs: 1_000_000 });
      delays.push(await w.fire());
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    expect(w.calls.restarts).toBe(6);
    expect(w.calls.revokes).toBe(6);
    expect(w.calls.fatal).toEqual([]);
    expect(w.events('consumer_restart_scheduled').map((l) => [l.attempt, l.delay_ms, l.reason, l.topic])).toEqual(delays.map((d, i) => [i + 1, d, 'broker_unreachable', 't']));
    r.joined();
    expect(r.down()).toBeUndefined();
    expect(w.events('consumer_recovered')).toEqual([expect.objectContaining({ crashes: 6, down_ms: 31_000 })]);
    // A later outage starts over from the first delay.
    r.crashed(refused());
    expect(await w.fire()).toBe(1_000);
  });

  it('keeps one restart scheduled when kafkajs reports several crashes meanwhile', async () => {
    const w = manualWorld();
    const r = createConsumerRestarter(w.options);
    r.crashed(refused());
    r.crashed(new KafkaJSRequestTimeoutError('Request timed out'));
    expect(w.pending()).toBe(1);
    expect(r.down()?.crashes).toBe(2);
    await w.fire();
    expect(w.calls.restarts).toBe(1);
  });

  it('treats a restart that throws as another crash', async () => {
    const w = manualWorld();
    const r = createConsumerRestarter(w.options);
    w.setRestart(() => Promise.reject(refused()));
    r.crashed(refused());
    await w.fire();
    expect(w.events('consumer_restart_failed')).toHaveLength(1);
    expect(w.pending()).toBe(1);
    expect(r.down()?.crashes).toBe(2);
  });

  it('goes fatal on a permanent error, once, and schedules nothing', () => {
    const w = manualWorld();
    const r = createConsumerRestarter(w.options);
    r.crashed(protocolError('GROUP_AUTHORIZATION_FAILED', 30, false));
    expect(w.pending()).toBe(0);
    expect(w.calls.restarts).toBe(0);
    expect(w.calls.fatal).toHaveLength(1);
    expect(w.calls.fatal[0]?.message).toMatch(/GROUP_AUTHORIZATION_FAILED.*What to do: grant the consumer its ACLs/);
  });

  it('passes our own fatal errors through unchanged', () => {
    const w = manualWorld();
    const r = createConsumerRestarter(w.options);
    const mismatch = missingCheckpoint({ groupId: 'g', topic: 't', partition: 0 }, '10', { epoch: 3, checkpointId: 'c' });
    r.crashed(mismatch);
    expect(w.calls.fatal).toEqual([mismatch]);
  });

  it('cancels a pending restart on stop and restarts nothing afterwards', async () => {
    const w = manualWorld();
    const r = createConsumerRestarter(w.options);
    r.crashed(refused());
    expect(w.pending()).toBe(1);
    r.stop();
    expect(w.pending()).toBe(0);
    r.crashed(refused());
    expect(w.pending()).toBe(0);
    expect(w.calls.restarts).toBe(0);
  });

  it('ignores the outcome of a restart still under way at stop', async () => {
    const w = manualWorld();
    const r = createConsumerRestarter(w.options);
    let fail: (e: Error) => void = () => undefined;
    w.setRestart(() => new Promise<void>((_, reject) => (fail = reject)));
    r.crashed(refused());
    await w.fire();
    r.stop();
    fail(refused());
    await new Promise((resolve) => setImmediate(resolve));
    expect(w.pending()).toBe(0);
    expect(w.events('consumer_restart_failed')).toEqual([]);
  });
});
