/** Bounded (sourceId, sequence) deduplication; see {@link createSequenceDedup}. */
export interface SequenceDedup {
  /** True when `sequence` is at or below the highest one already produced for `sourceId`. */
  isDuplicate(sourceId: string, sequence: number): boolean;
  /** Records a produced envelope. */
  produced(sourceId: string, sequence: number): void;
  readonly sources: number;
}

/**
 * Every edge source sends its envelopes in strictly increasing sequence order and moves on only
 * after a 200, so one number per source — the highest produced — identifies every duplicate
 * (a retry whose first POST reached Kafka but whose answer was lost). Memory is one entry per
 * source, least recently used evicted beyond `maxSources`; a duplicate of an evicted source is
 * produced again and dropped by the aggregator's own (source, sequence) check, so the bound
 * costs at most a repeated message, never a lost one.
 */
export function createSequenceDedup(o: { maxSources: number }): SequenceDedup {
  const last = new Map<string, number>();
  return {
    isDuplicate(sourceId, sequence) {
      const seen = last.get(sourceId);
      return seen !== undefined && sequence <= seen;
    },
    produced(sourceId, sequence) {
      const seen = last.get(sourceId);
      last.delete(sourceId);
      last.set(sourceId, Math.max(seen ?? sequence, sequence));
      if (last.size > o.maxSources) {
        const oldest = last.keys().next();
        if (!oldest.done) last.delete(oldest.value);
      }
    },
    get sources() {
      return last.size;
    },
  };
}
