import { hash64 } from '../../shared/algebra/index.ts';
import type { AccumulatorEvent } from '../accumulator.ts';

/**
 * The shard an event goes to: hash(site, messageId) mod `shards`. Deterministic in the
 * messageId, so a client's retry reaches the shard that already stored the first attempt and is
 * deduplicated there durably. Events without a messageId are spread by user (or event time).
 */
export function shardIndex(e: Pick<AccumulatorEvent, 'site' | 'messageId' | 'user' | 'eventTimeMs'>, shards: number): number {
  const key = e.messageId !== undefined ? `m:${e.messageId}` : e.user !== undefined ? `u:${e.user.hi}.${e.user.lo}` : `t:${e.eventTimeMs}`;
  return (hash64(`${e.site}\u0000${key}`).lo >>> 0) % shards;
}

/** Durable Object name of shard `index`; the shard's source id on the wire is `do-<name>`. */
export function shardName(edgeId: string, index: number): string {
  return `${edgeId}-${index}`;
}

/** Source id of a shard in its envelopes (key of its Kafka messages, unit of the aggregator's watermark). */
export function shardSourceId(name: string): string {
  return `do-${name}`;
}
