import type { Logger } from './log.ts';
import { errorMessage } from '../shared/errors.ts';

const REPEAT_GRACE_MS = 1_000;

/** Runs named close steps so a shutdown deadline can say which ones did not finish. */
export interface CloseSteps {
  run(name: string, close: () => Promise<void>): Promise<void>;
}

/** Close steps without tracking (tests, library use). */
export const untrackedSteps: CloseSteps = { run: (_name, close) => close() };

export interface Shutdown extends CloseSteps {
  /** Resolves on the first SIGINT or SIGTERM. */
  readonly signal: Promise<NodeJS.Signals>;
  /**
   * Starts the deadline (once): if the process is still alive `deadlineMs` later, the steps
   * still open are logged and the process exits. Armed by the first signal, and by the CLI
   * when a command returns (a forgotten socket must not keep a finished process alive).
   */
  armDeadline(exitCode: number): void;
}

/** The process hooks a {@link Shutdown} needs; injectable so unit tests need no real signals. */
export interface ShutdownProcess {
  on(signal: NodeJS.Signals, listener: () => void): unknown;
  exit(code: number): never | void;
}

/**
 * A bounded shutdown: SIGTERM (or SIGINT) always ends the process within `deadlineMs`, also
 * when a close hangs (kafkajs waiting for an unreachable broker, a stuck insert). A second
 * signal (a second Ctrl-C) exits at once. Every exit forced by the deadline logs `shutdown_deadline_exceeded`
 * with the steps that had not finished, so the operator knows what was left open.
 *
 * @example
 * const shutdown = createShutdown({ deadlineMs: 10_000, logger });
 * await shutdown.signal;
 * await shutdown.run('edge', () => edge.close());
 */
export function createShutdown(o: { deadlineMs: number; logger: Logger; process?: ShutdownProcess; setTimer?: (fn: () => void, ms: number) => void; now?: () => number }): Shutdown {
  const proc: ShutdownProcess = o.process ?? process;
  const setTimer = o.setTimer ?? ((fn, ms) => setTimeout(fn, ms).unref());
  const open = new Set<string>();
  let armed = false;
  let signalled: NodeJS.Signals | undefined;
  let signalledAt = 0;
  const now = o.now ?? Date.now;
  let resolveSignal: (s: NodeJS.Signals) => void = () => undefined;
  const signal = new Promise<NodeJS.Signals>((resolve) => (resolveSignal = resolve));

  const armDeadline = (exitCode: number): void => {
    if (armed) return;
    armed = true;
    setTimer(() => {
      const stillOpen = [...open];
      // The steps' own errors are logged where they happen; here only what never finished.
      o.logger.error({
        event: 'shutdown_deadline_exceeded',
        deadline_ms: o.deadlineMs,
        still_open: stillOpen,
        reason: stillOpen.length > 0 ? 'these components did not close in time (an unreachable broker or ClickHouse?); exiting anyway' : 'every component closed but something still holds the process open; exiting anyway',
      });
      proc.exit(stillOpen.length > 0 ? 1 : exitCode);
    }, o.deadlineMs);
  };

  const onSignal = (s: NodeJS.Signals) => (): void => {
    // Ctrl-C under `npm start` arrives twice at once (the terminal signals the whole process
    // group and npm forwards it): only a signal repeated a moment later means "now".
    if (signalled && now() - signalledAt < REPEAT_GRACE_MS) return;
    if (signalled) {
      o.logger.warn({ event: 'shutdown_forced', signal: s, still_open: [...open] });
      proc.exit(130);
      return;
    }
    signalled = s;
    signalledAt = now();
    armDeadline(0);
    resolveSignal(s);
  };
  proc.on('SIGINT', onSignal('SIGINT'));
  proc.on('SIGTERM', onSignal('SIGTERM'));

  return {
    signal,
    armDeadline,
    async run(name, close) {
      open.add(name);
      try {
        await close();
      } catch (err) {
        o.logger.warn({ event: 'close_failed', component: name, err: errorMessage(err) });
      } finally {
        open.delete(name);
      }
    },
  };
}
