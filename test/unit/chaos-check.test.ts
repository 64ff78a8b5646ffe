import { describe, expect, it } from 'vitest';
import { checkLedgers, HLL_RELATIVE_TOLERANCE, type Counted, type EventLedger } from '../chaos/check.ts';
import { FAULT_KINDS, planRound, targetOf } from '../chaos/faults.ts';

const ledger = (o: Partial<EventLedger> & { event: string }): EventLedger => ({ sentEvents: 100, ackedEvents: 80, usersSent: 50, usersAcked: 40, batches: 2, ackedBatches: 1, ...o });
const counted = (entries: Array<[string, Counted]>): Map<string, Counted> => new Map(entries);

describe('chaos invariant: acknowledged ≤ counted ≤ sent, users within the sketch error', () => {
  it('accepts every count between the acknowledged and the distinct events sent', () => {
    for (const events of [80, 90, 100]) expect(checkLedgers([ledger({ event: 'a' })], counted([['a', { events, users: 45 }]]))).toEqual([]);
  });

  it('reports acknowledged events that are missing', () => {
    expect(checkLedgers([ledger({ event: 'a' })], counted([['a', { events: 79, users: 45 }]]))).toEqual([
      { kind: 'acknowledged_lost', event: 'a', detail: '1 acknowledged events missing: acknowledged 80, counted 79, sent 100' },
    ]);
  });

  it('reports an event name with no row at all as lost', () => {
    expect(checkLedgers([ledger({ event: 'a' })], counted([])).map((v) => v.kind)).toEqual(['acknowledged_lost', 'users_out_of_bounds']);
  });

  it('reports events counted more than once (more than the distinct messageIds sent)', () => {
    expect(checkLedgers([ledger({ event: 'a' })], counted([['a', { events: 101, users: 45 }]])).map((v) => v.kind)).toEqual(['counted_twice']);
  });

  it('bounds unique users by the users of acknowledged and of sent events, widened by four standard errors', () => {
    const l = ledger({ event: 'a', usersAcked: 1000, usersSent: 1000 });
    const slack = Math.ceil(1000 * HLL_RELATIVE_TOLERANCE) + 1;
    expect(checkLedgers([l], counted([['a', { events: 90, users: 1000 + slack }]]))).toEqual([]);
    expect(checkLedgers([l], counted([['a', { events: 90, users: 1000 + slack + 1 }]])).map((v) => v.kind)).toEqual(['users_out_of_bounds']);
    expect(checkLedgers([l], counted([['a', { events: 90, users: 1000 - slack - 1 }]])).map((v) => v.kind)).toEqual(['users_out_of_bounds']);
  });

  it('reports counts under a name no client sent', () => {
    expect(checkLedgers([], counted([['ghost', { events: 3, users: 1 }]])).map((v) => v.kind)).toEqual(['unknown_event']);
  });
});

describe('chaos fault schedule', () => {
  it('is a function of seed and round: a replay gives the same faults', () => {
    expect(planRound(42, 7, 60_000)).toEqual(planRound(42, 7, 60_000));
    expect(planRound(42, 7, 60_000)).not.toEqual(planRound(43, 7, 60_000));
  });

  it('covers every fault kind in any five consecutive rounds', () => {
    for (const seed of [0, 1, 99]) {
      const kinds = new Set([3, 4, 5, 6, 7].flatMap((r) => planRound(seed, r, 60_000).map((f) => f.kind)));
      expect([...kinds].sort()).toEqual([...FAULT_KINDS].sort());
    }
  });

  it('keeps faults inside the bounds of the brief and never overlaps two faults on one target', () => {
    for (let round = 1; round <= 200; round++) {
      const faults = planRound(5, round, 60_000);
      expect(faults.length).toBeGreaterThanOrEqual(1);
      expect(faults.length).toBeLessThanOrEqual(3);
      for (const f of faults) {
        if (f.kind === 'broker-outage' || f.kind === 'clickhouse-outage') expect(f.durationMs).toBeGreaterThanOrEqual(5_000);
        if (f.kind === 'broker-outage' || f.kind === 'clickhouse-outage') expect(f.durationMs).toBeLessThanOrEqual(30_000);
      }
      for (const target of ['broker', 'aggregator-host', 'edge'] as const) {
        const on = faults.filter((f) => targetOf(f.kind) === target);
        for (let i = 1; i < on.length; i++) expect(on[i]!.atMs).toBeGreaterThanOrEqual(on[i - 1]!.atMs + on[i - 1]!.durationMs);
      }
    }
  });
});
