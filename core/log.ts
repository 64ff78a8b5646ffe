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

const LEVELS = new Set(['error', 'warn', 'info', 'debug']);

/**
 * The edge's log (`EdgeLog`: one object with an `event` key) into a pino logger, so `tributary
 * start` and `tributary edge` write one structured format. A `level` field (kafkajs lines) picks
 * the level; edge events without one are info. The routine `flushed` is left out, as by the
 * edge's default log.
 */
export function structuredEdgeLog(logger: Logger): (fields: { event: string; [key: string]: unknown }) => void {
  return ({ level, ...fields }) => {
    if (fields.event === 'flushed') return;
    const at = typeof level === 'string' && LEVELS.has(level) ? (level as 'error' | 'warn' | 'info' | 'debug') : 'info';
    logger[at](fields);
  };
}
