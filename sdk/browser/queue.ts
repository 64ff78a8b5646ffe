/**
 * The durable, bounded event queue in localStorage (key `trib_q`), shared by the tabs of a
 * site. Events leave it only after the edge accepted them (or refused them for good), so a
 * page closed mid-request sends them again on the next visit; the edge counts a repeated
 * messageId once.
 */
import { load, save } from './storage.ts';
import type { SdkEvent } from './types.ts';

/** sendBeacon and keepalive fetch may carry at most 64 KiB per page; stay below it. */
const CHUNK_CHARS = 60_000;
/** Well under the edge's MAX_EVENTS_PER_BATCH (500). */
const CHUNK_EVENTS = 100;

export const queued = (): SdkEvent[] => load<SdkEvent[]>('q', []);

/** Appends an event; beyond the bounds the oldest events are dropped and counted in `trib_dropped`. */
export function append(event: SdkEvent, maxEvents: number, maxChars: number): void {
  const q = queued();
  q.push(event);
  let dropped = 0;
  let json = JSON.stringify(q);
  while (q.length > maxEvents || json.length > maxChars) {
    q.shift();
    dropped++;
    json = JSON.stringify(q);
  }
  if (dropped) save('dropped', load('dropped', 0) + dropped);
  save('q', q, json);
}

/** The oldest events that fit in one request (at least one). */
export function head(q: SdkEvent[]): SdkEvent[] {
  let n = 0;
  let chars = 0;
  while (n < q.length && n < CHUNK_EVENTS && (chars += JSON.stringify(q[n]).length + 1) < CHUNK_CHARS) n++;
  return q.slice(0, n || 1);
}

/** Removes sent events by messageId, keeping whatever other tabs added meanwhile. */
export function remove(sent: SdkEvent[]): void {
  const ids = sent.map((e) => e.messageId);
  save('q', queued().filter((e) => !ids.includes(e.messageId)));
}
