import { createAccumulator, type Accumulator, type AccumulatorEvent } from '../accumulator.ts';

/** An {@link Accumulator} that keeps the request's events as they are, for the shards to aggregate. */
export interface EventCapture extends Accumulator {
  /** Hands over the captured events and starts empty. */
  take(): AccumulatorEvent[];
}

/**
 * The Worker's accumulator: one per request. The Worker does not aggregate, because the
 * durable unit is the shard's storage and deduplication by messageId must happen there, before
 * an event is merged into a sketch it could never be subtracted from.
 */
export function createEventCapture(o: { windowSizeMs: number; cardinalityCap: number }): EventCapture {
  let events: AccumulatorEvent[] = [];
  return {
    add(e) {
      events.push(e);
    },
    drain() {
      // Honours the Accumulator contract for any caller that wants rows; the Worker uses take().
      const acc = createAccumulator(o);
      for (const e of this.take()) acc.add(e);
      return acc.drain();
    },
    take() {
      const out = events;
      events = [];
      return out;
    },
    get rowCount() {
      return events.length;
    },
  };
}
