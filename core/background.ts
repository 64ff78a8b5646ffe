/** State of a long-running component, as health endpoints and the start banner report it. */
export interface ComponentHealth {
  /**
   * `joining`: started, not yet consuming (e.g. waiting for its consumer group); `degraded`: not
   * consuming for now and recovering by itself (a crashed consumer being restarted); `failed`:
   * stopped on a fatal error.
   */
  status: 'joining' | 'running' | 'degraded' | 'failed';
  error?: string;
}

/** A component started without waiting for it: see {@link startInBackground}. */
export interface BackgroundComponent<T> {
  health(): ComponentHealth;
  /** Settles (never rejects) when the component failed to start or stopped on a fatal error. */
  readonly fatal: Promise<Error>;
  /** The component once its start resolved. */
  current(): T | undefined;
  /** Stops it; waits for a start still under way first. */
  stop(): Promise<void>;
}

/**
 * Runs a component's start in the background, so the caller does not wait for it (the edge
 * must not wait for the aggregator's consumer group join, which after a crash lasts up to the
 * session timeout). `health` and `fatal` read the started component's own state, when it has one.
 *
 * @example
 * const aggregator = startInBackground({ starting: startConfiguredAggregator(...), health: (a) => a.health(), fatal: (a) => a.fatal });
 * aggregator.health(); // { status: 'joining' }
 */
export function startInBackground<T extends { stop(): Promise<void> }>(o: {
  starting: Promise<T>;
  health?: (component: T) => ComponentHealth;
  fatal?: (component: T) => Promise<Error> | undefined;
}): BackgroundComponent<T> {
  let started: T | undefined;
  let failure: Error | undefined;
  let stopped = false;
  let reportFatal: (err: Error) => void = () => undefined;
  const fatal = new Promise<Error>((resolve) => {
    reportFatal = (err) => {
      failure ??= err;
      resolve(failure);
    };
  });
  const starting = o.starting.then(
    (component) => {
      started = component;
      void o.fatal?.(component)?.then((err) => {
        if (!stopped) reportFatal(err);
      });
      return component;
    },
    (err: unknown) => {
      if (!stopped) reportFatal(err instanceof Error ? err : new Error(String(err)));
      return undefined;
    },
  );
  return {
    health() {
      if (failure) return { status: 'failed', error: failure.message };
      if (!started) return { status: 'joining' };
      return o.health?.(started) ?? { status: 'running' };
    },
    fatal,
    current: () => started,
    async stop() {
      stopped = true;
      const component = await starting;
      await component?.stop();
    },
  };
}
