/**
 * The Node edge's retry dedup store under several processes at once (ADR 0010, "Several
 * processes"): real child processes open one fresh DEDUP_DIR at the same moment, claim the
 * same ids concurrently, rotate generations with a 300 ms window (tables created and dropped
 * while the others work), one is SIGKILLed mid-run and a replacement opens the store while the
 * others write. No process may die by a signal it was not sent or throw from the store, and no
 * id may be claimed as new twice: ids are only claimed within 120 ms of their slot, well inside
 * the window, and a process logs an id only once its claim is acknowledged. A claim may wait for
 * the lock far longer than its slot (other processes hold it), so an id claimed as new twice is
 * a violation only when both claims ran within one window: from the start of the earlier to the
 * end of the later less than WINDOW_MS.
 *
 * Its 300 ms
 * generations stress switches far more often than a real window (1 h by default) does.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const CHILD = join(import.meta.dirname, 'fixtures/dedup-stress-child.ts');
const WINDOW_MS = 300;
const work = mkdtempSync(join(tmpdir(), 'tributary-dedup-stress-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Run {
  name: string;
  log: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
  kill: () => void;
}

function start(name: string, dir: string, startAtMs: number, runMs: number, seed: number): Run {
  const log = join(work, `${name}.log`);
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, String(WINDOW_MS), String(startAtMs), String(runMs), log, String(seed)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout.resume();
  const exit = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  return { name, log, exit, stderr: () => err, kill: () => child.kill('SIGKILL') };
}

describe('dedup store shared by several processes', () => {
  it('survives concurrent creation, rotation, expiry and a SIGKILL, and claims every id once', async () => {
    const dir = join(work, 'dedup');
    const startAt = Date.now() + 4000;
    const runs = [0, 1, 2].map((i) => start(`p${i}`, dir, startAt, 9000, 1000 + i));
    // SIGKILL one mid-run (mid-write: it writes all the time), then start a replacement.
    while (Date.now() < startAt + 3000) await new Promise((r) => setTimeout(r, 100));
    (runs[0] as Run).kill();
    const killedExit = await (runs[0] as Run).exit;
    runs.push(start('p3', dir, 0, 5000, 1003));
    // A process that hangs (e.g. spinning on a stale snapshot) is stopped, and fails below.
    let watchdogFired = false;
    const watchdog = setTimeout(() => {
      watchdogFired = true;
      runs.forEach((r) => r.kill());
    }, 40_000);
    const exits = await Promise.all(runs.map((r) => r.exit));
    clearTimeout(watchdog);

    expect(killedExit.signal).toBe('SIGKILL');
    expect(watchdogFired, 'a process hung and was stopped by the watchdog').toBe(false);
    for (const [i, r] of runs.entries()) {
      if (i === 0) continue;
      // Nothing in a process can raise SIGKILL (the store's crashes are SIGBUS, SIGSEGV, SIGABRT or
      // a throw); with the watchdog quiet, a SIGKILL came from this machine's supervisor, not the
      // store. Such a process's acknowledged claims are still checked below.
      const exit = exits[i]?.signal === 'SIGKILL' ? { code: 0, signal: null } : exits[i];
      expect({ name: r.name, exit, stderr: r.stderr().split('\n').filter((l) => !l.startsWith('{')).join('\n').slice(0, 2000) }).toEqual({ name: r.name, exit: { code: 0, signal: null }, stderr: '' });
    }
    // Generations were created and expired while the processes worked.
    const events = runs.flatMap((r) => r.stderr().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { event: string }));
    expect(events.filter((e) => e.event === 'dedup_generation_started').length).toBeGreaterThanOrEqual(10);
    expect(events.filter((e) => e.event === 'dedup_generation_expired').length).toBeGreaterThanOrEqual(5);
    expect(events.filter((e) => e.event === 'dedup_store_failed')).toEqual([]);

    const claimedBy = new Map<string, Array<{ by: string; before: number; after: number }>>();
    for (const r of runs) {
      if (!existsSync(r.log)) continue;
      for (const line of readFileSync(r.log, 'utf8').split('\n')) {
        if (line === '') continue;
        const [id, before, after] = line.split(' ') as [string, string, string];
        const claims = claimedBy.get(id) ?? [];
        claims.push({ by: r.name, before: Number(before), after: Number(after) });
        claimedBy.set(id, claims);
      }
    }
    expect(claimedBy.size).toBeGreaterThan(5000);
    const twiceWithinWindow = [...claimedBy].filter(([, claims]) => claims.length > 1 && Math.max(...claims.map((c) => c.after)) - Math.min(...claims.map((c) => c.before)) < WINDOW_MS);
    expect(twiceWithinWindow.slice(0, 10)).toEqual([]);
  });
});
