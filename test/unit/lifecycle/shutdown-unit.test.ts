import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { createShutdown, type ShutdownProcess } from '../../../core/shutdown.ts';

function harness() {
  const listeners = new Map<string, Array<() => void>>();
  const exits: number[] = [];
  const timers: Array<{ fn: () => void; ms: number }> = [];
  const logs: Array<Record<string, unknown>> = [];
  let clock = 0;
  const proc: ShutdownProcess = {
    on: (s, l) => listeners.set(s, [...(listeners.get(s) ?? []), l]),
    exit: (code) => void exits.push(code),
  };
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, done) => (logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) }));
  const shutdown = createShutdown({ deadlineMs: 5000, logger, process: proc, setTimer: (fn, ms) => void timers.push({ fn, ms }), now: () => clock });
  return {
    shutdown,
    exits,
    timers,
    logs: async () => (await new Promise((r) => setImmediate(r)), logs),
    send: (s: NodeJS.Signals) => listeners.get(s)?.forEach((l) => l()),
    advance: (ms: number) => (clock += ms),
  };
}

describe('bounded shutdown', () => {
  it('resolves the signal and, when a close hangs, exits at the deadline naming what is still open', async () => {
    const h = harness();
    h.send('SIGTERM');
    expect(await h.shutdown.signal).toBe('SIGTERM');
    void h.shutdown.run('edge', async () => undefined);
    void h.shutdown.run('aggregator', () => new Promise<void>(() => undefined));
    await new Promise((r) => setImmediate(r));
    expect(h.timers.map((t) => t.ms)).toEqual([5000]);
    expect(h.exits).toEqual([]);
    h.timers[0]!.fn();
    expect(h.exits).toEqual([1]);
    const log = (await h.logs()).find((l) => l.event === 'shutdown_deadline_exceeded');
    expect(log).toMatchObject({ deadline_ms: 5000, still_open: ['aggregator'] });
  });

  it('exits with the command\'s own code when everything closed but something still holds the process', async () => {
    const h = harness();
    await h.shutdown.run('edge', async () => undefined);
    h.shutdown.armDeadline(0);
    h.shutdown.armDeadline(1); // armed once: the first code stands
    expect(h.timers).toHaveLength(1);
    h.timers[0]!.fn();
    expect(h.exits).toEqual([0]);
  });

  it('a failing close is logged and does not stop the next one', async () => {
    const h = harness();
    const closed: string[] = [];
    await h.shutdown.run('edge', async () => { throw new Error('broker unreachable'); });
    await h.shutdown.run('clickhouse', async () => void closed.push('clickhouse'));
    expect(closed).toEqual(['clickhouse']);
    expect((await h.logs()).find((l) => l.event === 'close_failed')).toMatchObject({ component: 'edge', err: 'broker unreachable' });
  });

  it('a second signal a moment later exits at once; the duplicate of a Ctrl-C under npm does not', () => {
    const h = harness();
    h.send('SIGINT');
    h.send('SIGINT'); // same instant: terminal + npm forwarding
    expect(h.exits).toEqual([]);
    h.advance(1500);
    h.send('SIGINT');
    expect(h.exits).toEqual([130]);
  });
});
