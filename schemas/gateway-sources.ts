/**
 * Which envelope source ids an edge may use at the gateway (ADR 0015). A source id is the key of
 * its Kafka messages and the unit of the aggregator's (source, sequence) deduplication and
 * watermark, so an edge that could claim another edge's source id could make the gateway drop
 * that edge's envelopes as duplicates or hold its watermark back. The gateway therefore accepts
 * from edge `E` only the two forms its own code produces:
 *
 *   do-<E>-<shard index>      Workers Durable Object shards (edge/worker/shard-routing.ts)
 *   deno-<E>-<hex>            a Deno edge process (edge/deno/main.ts, random per process)
 *
 * Unforgeable: the suffix after the last `-` has no `-` (decimal digits, or hex), so the edge id
 * is everything between the prefix and the last `-`: no two edge ids own the same source id,
 * whatever `-` their ids contain, and the prefixes `do-` and `deno-` differ at their third
 * character, so the two forms never overlap. Node edges write to Kafka directly and never pass here.
 */

const SHARD_INDEX = /^\d{1,6}$/;
const PROCESS_TAG = /^[0-9a-f]{8,32}$/;

/** Source id of a Deno edge process: `deno-<edgeId>-<hex tag>` (the tag is random per process). */
export function denoSourceId(edgeId: string, tag: string): string {
  return `deno-${edgeId}-${tag}`;
}

/**
 * True when `sourceId` is one of edge `edgeId`'s own forms (see the module comment).
 *
 * @example
 * sourceBelongsTo('workers-prod', 'do-workers-prod-3')   // true
 * sourceBelongsTo('workers', 'do-workers-prod-3')        // false: that is edge workers-prod's
 * sourceBelongsTo('deno-eu', 'deno-deno-eu-1a2b3c4d')    // true
 */
export function sourceBelongsTo(edgeId: string, sourceId: string): boolean {
  const last = sourceId.lastIndexOf('-');
  if (last < 0) return false;
  const head = sourceId.slice(0, last);
  const tail = sourceId.slice(last + 1);
  if (head === `do-${edgeId}`) return SHARD_INDEX.test(tail);
  if (head === `deno-${edgeId}`) return PROCESS_TAG.test(tail);
  return false;
}

/** How an error message describes the accepted forms for `edgeId`. */
export function ownSourceForms(edgeId: string): string {
  return `do-${edgeId}-<shard index> (Workers) or deno-${edgeId}-<hex> (Deno)`;
}
