import type { PipelineSink } from '../../shared/ports/pipeline-sink.ts';
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
 * Wraps the edge's sink (its contract unchanged) to remember whether the latest send reached
 * Kafka. A failure marks the sink `failing` until a later send succeeds: the flusher retries the
 * same envelope and sends a heartbeat when idle, so the state follows the broker within a flush
 * interval or a heartbeat, with no probe of its own.
 *
 * @example
 * ```ts
 * const tracked = trackSinkHealth({ sink, now: Date.now });
 * createEdge({ ...options, sink: tracked.sink });
 * tracked.state(); // { status: 'ok', consecutive_failures: 0 }
 * ```
 */
export function trackSinkHealth(o: { sink: PipelineSink; now: () => number }): {
  sink: PipelineSink;
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
    sink: {
      sendPartials: (envelope) => observe(() => o.sink.sendPartials(envelope)),
      sendRejected: (records) => observe(() => o.sink.sendRejected(records)),
    },
    state: () =>
      failures === 0
        ? { status: 'ok', consecutive_failures: 0 }
        : { status: 'failing', consecutive_failures: failures, failing_since: new Date(failingSince ?? o.now()).toISOString(), ...(lastError ? { last_error: lastError } : {}) },
  };
}
