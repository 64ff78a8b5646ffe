import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs; the first argument object carries an `event` key in snake_case
 * (`window_closed`, `partial_late`) so logs can be searched by what happened.
 */
export function createLogger(name: string, level: string = 'info'): Logger {
  return pino({
    name,
    level,
    // Secrets never reach logs even if someone logs a config object by mistake.
    redact: { paths: ['*.password', '*.PSEUDONYM_SALT', '*.salt', 'password', 'salt'], censor: '[redacted]' },
  });
}

/** A logger that drops everything, for tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
