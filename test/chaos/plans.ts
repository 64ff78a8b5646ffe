/**
 * Round plans: the randomized, seeded rounds of `npm run chaos`, and the named scenarios.
 */
import { planRound, type Fault } from './faults.ts';
import type { RoundLoad, RoundPlan } from './harness.ts';

/** SDK-like traffic of the random rounds: ~200 batches/s of 1..100 events over 20 connections. */
export const DEFAULT_LOAD: RoundLoad = { connections: 20, batchesPerSecond: 200, maxBatchEvents: 100, usersPerClient: 500, resendProbability: 0.03 };

/** Rounds `from..to` of seed `seed`: the same seed and round number always give the same faults. */
export function randomRounds(seed: number, from: number, to: number, loadMs: number, load: RoundLoad = DEFAULT_LOAD): RoundPlan[] {
  const rounds: RoundPlan[] = [];
  for (let round = from; round <= to; round++) rounds.push({ round, scenario: 'random', loadMs, load, faults: planRound(seed, round, loadMs) });
  return rounds;
}

/**
 * Finding 1 of issue 9: the edge at full rate (50 connections of 100-event batches, each sending
 * as fast as answers come back, as autocannon does) while the broker is stopped for 20 s and
 * started again; then drain and check.
 */
export function outageUnderLoad(round: number, o: { connections?: number; batchesPerSecond?: number; outageMs?: number; beforeMs?: number; afterMs?: number } = {}): RoundPlan {
  const beforeMs = o.beforeMs ?? 15_000;
  const outageMs = o.outageMs ?? 20_000;
  const afterMs = o.afterMs ?? 15_000;
  const fault: Fault = { kind: 'broker-outage', atMs: beforeMs, durationMs: outageMs };
  return {
    round,
    scenario: 'outage-under-load',
    loadMs: beforeMs + outageMs + afterMs,
    // The full-rate load meets the broker once it is back, however long its restart takes.
    loadAfterFaultsMs: afterMs,
    load: { connections: o.connections ?? 50, batchesPerSecond: o.batchesPerSecond ?? 0, maxBatchEvents: 100, fixedBatchSize: true, usersPerClient: 1000, resendProbability: 0 },
    faults: [fault],
  };
}
