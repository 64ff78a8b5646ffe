/**
 * The seeded fault schedule of a chaos round. A round's faults depend only on (seed, round,
 * round length), so `--seed N --rounds K` replays the same schedule, and any round can be replayed
 * alone with `--seed N --round R`.
 */
import { rng } from '../support/prng.ts';

export const FAULT_KINDS = ['broker-outage', 'aggregator-crash', 'edge-crash', 'rebalance', 'clickhouse-outage'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface Fault {
  kind: FaultKind;
  /** Start, from the start of the round's load. */
  atMs: number;
  /** broker-outage, clickhouse-outage: how long it lasts; crashes: time until the restart; rebalance: how long the second instance stays. */
  durationMs: number;
  /** edge-crash: every edge process (`group`) or one worker that its primary replaces (`worker`). */
  target?: 'group' | 'worker';
}

/** What a fault acts on. */
export type FaultTarget = 'broker' | 'aggregator-host' | 'edge';

/**
 * Faults on the same target go one after another: a crash of the aggregator host would take an
 * added instance or a failing switch with it, and a broker stopped while it starts fails the start.
 */
export function targetOf(kind: FaultKind): FaultTarget {
  switch (kind) {
    case 'broker-outage':
      return 'broker';
    case 'edge-crash':
      return 'edge';
    case 'aggregator-crash':
    case 'rebalance':
    case 'clickhouse-outage':
      return 'aggregator-host';
  }
}

function between(random: () => number, lo: number, hi: number): number {
  return Math.round(lo + random() * (hi - lo));
}

function durationOf(kind: FaultKind, random: () => number): number {
  switch (kind) {
    case 'broker-outage':
      return between(random, 5_000, 30_000);
    case 'clickhouse-outage':
      return between(random, 5_000, 30_000);
    case 'rebalance':
      return between(random, 5_000, 25_000);
    case 'aggregator-crash':
    case 'edge-crash':
      return between(random, 0, 3_000);
  }
}

/**
 * One to three faults. The first kind cycles with the round number, so every five consecutive
 * rounds cover every kind; the others are drawn at random.
 */
export function planRound(seed: number, round: number, roundMs: number): Fault[] {
  const random = rng((seed * 1_000_003 + round * 7919) >>> 0);
  const kinds: FaultKind[] = [FAULT_KINDS[(round - 1 + seed) % FAULT_KINDS.length] as FaultKind];
  const extra = Math.floor(random() * 3);
  for (let i = 0; i < extra; i++) kinds.push(FAULT_KINDS[Math.floor(random() * FAULT_KINDS.length)] as FaultKind);

  const faults: Fault[] = [];
  const free: Record<FaultTarget, number> = { broker: 3_000, 'aggregator-host': 3_000, edge: 3_000 };
  for (const kind of kinds) {
    const durationMs = durationOf(kind, random);
    const latest = Math.max(3_000, roundMs - durationMs - 10_000);
    const target = targetOf(kind);
    const atMs = Math.max(between(random, 3_000, latest), free[target]);
    // A restart takes seconds more than the planned pause: the next fault on the target waits for it.
    free[target] = atMs + durationMs + 5_000;
    faults.push({ kind, atMs, durationMs, ...(kind === 'edge-crash' ? { target: random() < 0.5 ? 'group' : 'worker' } : {}) });
  }
  return faults.sort((a, b) => a.atMs - b.atMs);
}

export function describeFault(f: Fault): string {
  const at = `at ${(f.atMs / 1000).toFixed(1)} s`;
  switch (f.kind) {
    case 'broker-outage':
      return `broker stopped ${at} for ${(f.durationMs / 1000).toFixed(1)} s`;
    case 'clickhouse-outage':
      return `ClickHouse writes failing ${at} for ${(f.durationMs / 1000).toFixed(1)} s`;
    case 'rebalance':
      return `second aggregator joins ${at}, leaves ${(f.durationMs / 1000).toFixed(1)} s later`;
    case 'aggregator-crash':
      return `aggregator host SIGKILLed ${at}, restarted ${(f.durationMs / 1000).toFixed(1)} s later`;
    case 'edge-crash':
      return `${f.target === 'worker' ? 'one edge worker' : 'edge (all processes)'} SIGKILLed ${at}, ${f.target === 'worker' ? 'replaced by its primary' : `restarted ${(f.durationMs / 1000).toFixed(1)} s later`}`;
  }
}
