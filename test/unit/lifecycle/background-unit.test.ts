import { describe, expect, it } from 'vitest';
import { startInBackground } from '../../../core/background.ts';
import type { ComponentHealth } from '../../../core/background.ts';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}
const tick = () => new Promise((r) => setImmediate(r));

describe('a component started in the background', () => {
  it('is joining until its start resolves, then reports its own health', async () => {
    const start = deferred<{ stop(): Promise<void>; state: ComponentHealth }>();
    const c = startInBackground({ starting: start.promise, health: (a) => a.state });
    expect(c.health()).toEqual({ status: 'joining' });
    start.resolve({ stop: async () => undefined, state: { status: 'running' } });
    await tick();
    expect(c.health()).toEqual({ status: 'running' });
  });

  it('a failed start is fatal and reported as failed with its message', async () => {
    const start = deferred<{ stop(): Promise<void> }>();
    const c = startInBackground({ starting: start.promise });
    start.reject(new Error('group coordinator unavailable'));
    expect((await c.fatal).message).toBe('group coordinator unavailable');
    expect(c.health()).toEqual({ status: 'failed', error: 'group coordinator unavailable' });
  });

  it('forwards the started component\'s fatal error', async () => {
    const fatal = deferred<Error>();
    const c = startInBackground({ starting: Promise.resolve({ stop: async () => undefined, fatal: fatal.promise }), fatal: (a) => a.fatal });
    await tick();
    fatal.resolve(new Error('checkpoint 7 missing'));
    expect((await c.fatal).message).toBe('checkpoint 7 missing');
    expect(c.health().status).toBe('failed');
  });

  it('stop waits for a start under way and then stops the component', async () => {
    const start = deferred<{ stop(): Promise<void> }>();
    let stopped = false;
    const c = startInBackground({ starting: start.promise });
    const stopping = c.stop();
    start.resolve({ stop: async () => void (stopped = true) });
    await stopping;
    expect(stopped).toBe(true);
  });
});
