import type { PartialSink, RejectedSink } from '../ports.ts';
import { errorMessage } from '../../shared/errors.ts';

/** What `GET /health` says about the sink, from the outcome of the latest sends. */
export interface SinkHealth {
  status: 'ok' | 'failing';
  /** Sends failed in a row; 0 once one succeeds. */
  consecutive_failures: number;
  /** Since when sends fail (ISO time), while failing. */
  failing_since?: string;
  last_error?: string;
}

/**
 * Wraps the edge's sinks to remember whether the latest send reached Kafka. A failure marks
 * the sink `failing` until a later send succeeds: the flusher retries the same envelope and
 * sends a heartbeat when idle, so the state follows the broker within a flush interval or a
 * heartbeat, with no probe of its own.
 *
 * @example
 * ```ts
 * const tracked = trackSinkHealth({ partialSink, rejectedSink, now: Date.now });
 * createEdge({ ...options, partialSink: tracked.partialSink, rejectedSink: tracked.rejectedSink });
 * tracked.state(); // { status: 'ok', consecutive_failures: 0 }
 * ```
 */
export function trackSinkHealth(o: { partialSink: PartialSink; rejectedSink: RejectedSink; now: () => number }): {
  partialSink: PartialSink;
  rejectedSink: RejectedSink;
  state(): SinkHealth;
} {
  let failures = 0;
  let failingSince: number | undefined;
  let lastError: string | undefined;
  const observe = async (send: () => Promise<void>): Promise<void> => {
    try {
      await send();
    } catch (err) {
      failures++;
      failingSince ??= o.now();
      lastError = errorMessage(err);
      throw err;
    }
    failures = 0;
    failingSince = undefined;
    lastError = undefined;
  };
  return {
    partialSink: { send: (message) => observe(() => o.partialSink.send(message)) },
    rejectedSink: { send: (records) => observe(() => o.rejectedSink.send(records)) },
    state: () =>
      failures === 0
        ? { status: 'ok', consecutive_failures: 0 }
        : { status: 'failing', consecutive_failures: failures, failing_since: new Date(failingSince ?? o.now()).toISOString(), ...(lastError ? { last_error: lastError } : {}) },
  };
}
