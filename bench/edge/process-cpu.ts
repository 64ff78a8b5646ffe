/**
 * CPU time of a process and all its descendants (cluster workers), read from /proc, so the
 * benchmark can charge the edge only for the measured runs (not its start-up: tsx compiling
 * the sources, JIT warm-up) and count every worker of a multi-process edge. Linux only:
 * elsewhere `treeCpuMs` returns undefined and the caller falls back to the server's own report.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat; 100 on every mainstream Linux. */
const CLOCK_TICKS_PER_S = 100;

interface Stat {
  ppid: number;
  cpuMs: number;
}

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces: split after it.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Fields after the name, 0-based: state(0) ppid(1) ... utime(11) stime(12).
  return { ppid: Number(fields[1]), cpuMs: ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S };
}

/** User + system CPU of `pid` and its live descendants, in ms; undefined without /proc. */
export function treeCpuMs(pid: number): number | undefined {
  const root = readStat(pid);
  if (root === undefined) return undefined;
  const children = new Map<number, number[]>();
  const stats = new Map<number, Stat>([[pid, root]]);
  for (const name of readdirSync('/proc')) {
    const p = Number(name);
    if (!Number.isInteger(p) || p === pid) continue;
    const s = readStat(p);
    if (s === undefined) continue;
    stats.set(p, s);
    children.set(s.ppid, [...(children.get(s.ppid) ?? []), p]);
  }
  let total = 0;
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.pop() as number;
    total += stats.get(p)?.cpuMs ?? 0;
    queue.push(...(children.get(p) ?? []));
  }
  return total;
}
