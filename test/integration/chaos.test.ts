import { describe, expect, it } from 'vitest';
import { FAULT_KINDS } from '../chaos/faults.ts';
import { faultsByKind, runChaos, type ChaosReport } from '../chaos/harness.ts';
import { outageUnderLoad } from '../chaos/plans.ts';

// The short, deterministic version of `npm run chaos` (docs/RELIABILITY.md): its own broker,
// `tributary edge` with two processes, the aggregator host child with embedded ClickHouse, and
// SDK-like clients. Round 1 is finding 1 of issue 9 at a moderate rate (a 20 s broker outage
// under load); round 2 injects the other fault kinds: an aggregator SIGKILL, an edge worker
// SIGKILLed and replaced by its primary, a second aggregator joining and leaving, ClickHouse
// writes failing, and the whole edge process group SIGKILLed and restarted. After each round
// every client's acknowledged events must be counted exactly once and nothing more than once.
//
// The edge SIGKILLs cut requests whose envelope may already be in Kafka: the flush journal
// (ADR 0010, "The flush journal") makes their retries wait for the dead process's journal to be
// re-sent and then count as duplicates; edge-journal.test.ts hits that instant deterministically.
const SEED = 20261206;

describe('chaos: the pipeline under faults keeps the ledger of its clients', () => {
  it('counts every acknowledged event once and no event twice across every fault kind', { timeout: 900_000 }, async () => {
    const lines: string[] = [];
    const report: ChaosReport = await runChaos({
      seed: SEED,
      graceMs: 15_000,
      drainTimeoutMs: 150_000,
      log: (line) => {
        lines.push(line);
        console.log(line);
      },
      rounds: [
        // Load is flowing well before the broker stops (3 s), and meets it for 5 s once its restart is done.
        outageUnderLoad(1, { connections: 12, batchesPerSecond: 60, beforeMs: 3_000, outageMs: 20_000, afterMs: 5_000 }),
        {
          // Faults on the aggregator host follow one another as soon as the previous one is over
          // (its restart takes a few seconds); the edge's overlap them, as faults on different
          // targets do in the random rounds. Durations are the shortest of the random rounds'
          // ranges (5 s) or a little more.
          round: 2,
          scenario: 'every-fault',
          loadMs: 22_000,
          load: { connections: 12, batchesPerSecond: 60, maxBatchEvents: 100, usersPerClient: 300, resendProbability: 0.05 },
          faults: [
            { kind: 'aggregator-crash', atMs: 2_000, durationMs: 500 },
            { kind: 'rebalance', atMs: 5_000, durationMs: 5_000 },
            { kind: 'edge-crash', atMs: 6_000, durationMs: 0, target: 'worker' },
            { kind: 'clickhouse-outage', atMs: 11_500, durationMs: 6_000 },
            { kind: 'edge-crash', atMs: 13_000, durationMs: 1_500, target: 'group' },
          ],
        },
      ],
    });

    // The faults happened and traffic went through: a run that injected nothing proves nothing.
    const byKind = faultsByKind(report);
    for (const kind of FAULT_KINDS) expect(byKind[kind], `${kind} injected`).toBeGreaterThanOrEqual(1);
    for (const round of report.rounds) expect(round.ackedEvents, `round ${round.round} acknowledged events`).toBeGreaterThan(5_000);
    // The outage makes clients retry refused batches; round 2's clients also re-send acknowledged
    // batches (and retry the requests the edge SIGKILLs cut).
    expect(report.rounds[0]?.retries, 'round 1 client retries').toBeGreaterThan(0);
    expect(report.rounds[1]?.resends).toBeGreaterThan(0);
    expect(report.rounds.flatMap((r) => r.violations.map((v) => `round ${r.round} ${v.kind} ${v.event ?? ''}: ${v.detail}`))).toEqual([]);
  });
});
