/**
 * The invariant of a chaos round, checked per client ledger against what ClickHouse counts:
 *   acknowledged ≤ counted ≤ distinct events sent
 * (every acknowledged event counted exactly once, every event never acknowledged at most once,
 * a re-sent batch never counted again), and the HyperLogLog's distinct users between the users of
 * acknowledged events and the users of all events sent, within the sketch's error.
 */

/** What one client sent in one round under one event name. Every messageId is unique, so sent = distinct. */
export interface EventLedger {
  event: string;
  /** Distinct events (messageIds) sent at least once. */
  sentEvents: number;
  /** Distinct events in batches answered 2xx at least once. */
  ackedEvents: number;
  /** Distinct users among the events sent / acknowledged. */
  usersSent: number;
  usersAcked: number;
  batches: number;
  ackedBatches: number;
}

export interface Counted {
  events: number;
  /** tributary_hll_estimate over the event's rows. */
  users: number;
}

export type ViolationKind = 'acknowledged_lost' | 'counted_twice' | 'users_out_of_bounds' | 'batch_refused' | 'not_drained' | 'unknown_event' | 'process_exited' | 'pipeline_unrecoverable';

export interface Violation {
  kind: ViolationKind;
  event?: string;
  detail: string;
}

/** HyperLogLog precision 14: standard error 1.04/√16384 ≈ 0.81 %; four standard errors are allowed. */
export const HLL_RELATIVE_TOLERANCE = 4 * (1.04 / Math.sqrt(16384));

export function usersWithinError(counted: number, usersAcked: number, usersSent: number): boolean {
  const low = Math.floor(usersAcked * (1 - HLL_RELATIVE_TOLERANCE)) - 1;
  const high = Math.ceil(usersSent * (1 + HLL_RELATIVE_TOLERANCE)) + 1;
  return counted >= low && counted <= high;
}

/**
 * Compares the ledgers with ClickHouse's counts, keyed by event name. Event names of the round
 * that no ledger knows are violations too (something was counted that no client sent).
 */
export function checkLedgers(ledgers: readonly EventLedger[], counted: ReadonlyMap<string, Counted>): Violation[] {
  const violations: Violation[] = [];
  const known = new Set<string>();
  for (const l of ledgers) {
    known.add(l.event);
    const c = counted.get(l.event) ?? { events: 0, users: 0 };
    if (c.events < l.ackedEvents) {
      violations.push({ kind: 'acknowledged_lost', event: l.event, detail: `${l.ackedEvents - c.events} acknowledged events missing: acknowledged ${l.ackedEvents}, counted ${c.events}, sent ${l.sentEvents}` });
    }
    if (c.events > l.sentEvents) {
      violations.push({ kind: 'counted_twice', event: l.event, detail: `${c.events - l.sentEvents} events counted more than once: counted ${c.events}, distinct messageIds sent ${l.sentEvents} (acknowledged ${l.ackedEvents})` });
    }
    if (l.sentEvents > 0 && !usersWithinError(c.users, l.usersAcked, l.usersSent)) {
      violations.push({ kind: 'users_out_of_bounds', event: l.event, detail: `unique users ${c.users} outside [${l.usersAcked}, ${l.usersSent}] ± ${(HLL_RELATIVE_TOLERANCE * 100).toFixed(1)} %` });
    }
  }
  for (const [event, c] of counted) {
    if (!known.has(event) && c.events > 0) violations.push({ kind: 'unknown_event', event, detail: `${c.events} events counted under a name no client sent` });
  }
  return violations;
}
