/**
 * Which partition of `__consumer_offsets` coordinates a consumer group — and, by the same
 * formula, which partition of `__transaction_state` a transactional id — exactly as the broker
 * computes it: `Utils.abs(key.hashCode) % partitionCount`. Pure; used to warm up every
 * coordinator partition of a fresh local broker.
 *
 * @example
 * coordinatorPartition('hello', 8) // 99162322 % 8 === 2
 */

/** Java's `String.hashCode()`: 32-bit overflow over UTF-16 code units. */
export function javaStringHashCode(value: string): number {
  let hash = 0;
  for (let i = 0; i < value.length; i++) hash = (Math.imul(31, hash) + value.charCodeAt(i)) | 0;
  return hash;
}

export function coordinatorPartition(key: string, partitionCount: number): number {
  const hash = javaStringHashCode(key);
  // Kafka's Utils.abs maps Integer.MIN_VALUE to 0 rather than overflowing.
  return (hash === -2147483648 ? 0 : Math.abs(hash)) % partitionCount;
}

/** One key per partition, in partition order: `<prefix>-<n>` with the smallest n landing on it. */
export function keysCoveringPartitions(partitionCount: number, prefix: string): string[] {
  const byPartition = new Map<number, string>();
  for (let n = 0; byPartition.size < partitionCount; n++) {
    const key = `${prefix}-${n}`;
    const partition = coordinatorPartition(key, partitionCount);
    if (!byPartition.has(partition)) byPartition.set(partition, key);
  }
  return [...byPartition.entries()].sort(([a], [b]) => a - b).map(([, key]) => key);
}
