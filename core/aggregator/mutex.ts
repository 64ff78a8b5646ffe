/** A minimal async mutex: batch processing and timed emissions of one partition never interleave. */
export interface Mutex {
  run<T>(fn: () => Promise<T>): Promise<T>;
  readonly locked: boolean;
}

export function createMutex(): Mutex {
  let tail: Promise<unknown> = Promise.resolve();
  let holders = 0;
  return {
    run(fn) {
      holders++;
      const result = tail.then(fn).finally(() => {
        holders--;
      });
      tail = result.catch(() => undefined);
      return result;
    },
    get locked() {
      return holders > 0;
    },
  };
}
