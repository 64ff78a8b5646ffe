// The fatal errors of a disagreement between Kafka's committed offsets and ClickHouse's
// checkpoints (ADR 0003 "State mismatch", docs/OPERATIONS.md "State mismatch"): what happened and
// what to run, naming the group, topic and partition so the command can be pasted.

/** A state mismatch or a permanent write error: stop the aggregator, do not retry. */
export class FatalAggregatorError extends Error {
  override readonly name = 'FatalAggregatorError';
}

export interface PartitionScope {
  groupId: string;
  topic: string;
  partition: number;
}

const SEE = 'see docs/OPERATIONS.md "State mismatch"';

function mismatch(s: PartitionScope, what: string, todo: string): FatalAggregatorError {
  return new FatalAggregatorError(`state mismatch on ${s.topic}[${s.partition}] (group ${s.groupId}): ${what}. ${todo}`);
}

function consumerGroups(s: PartitionScope, reset: string): string {
  return `\`kafka-consumer-groups.sh --bootstrap-server <brokers> --group ${s.groupId} --topic ${s.topic}:${s.partition} --reset-offsets ${reset} --execute\``;
}

/** The committed offset names a checkpoint this ClickHouse does not have. */
export function missingCheckpoint(s: PartitionScope, committedOffset: string | undefined, pointer: { epoch: number; checkpointId: string }): FatalAggregatorError {
  return mismatch(
    s,
    `the committed offset ${committedOffset ?? '?'} names checkpoint ${pointer.checkpointId} (epoch ${pointer.epoch}), which this ClickHouse does not have in aggregator_checkpoints: ` +
      'the broker kept offsets of a consumer that wrote into another ClickHouse (e.g. a fresh CLICKHOUSE_PATH with an old broker), or the checkpoint was deleted',
    'Local development: stop Tributary and run `tributary reset --yes` (clears the local broker data, the consumer group and the embedded ClickHouse). ' +
      'Production: restore aggregator_checkpoints from the backup of this ClickHouse, or, to start this group over deliberately, stop every aggregator of the group and run ' +
      `${consumerGroups(s, '--to-earliest')} (every event still in the topic is counted again into this ClickHouse) — ${SEE}`,
  );
}

/** No committed offset, yet checkpoints prove this ClickHouse counted records still in the log. */
export function forgottenProgress(s: PartitionScope, summary: { maxEpoch: number; maxNextOffset: string }, logStart: string): FatalAggregatorError {
  return mismatch(
    s,
    `the broker has no committed offset for the group, but this ClickHouse holds its checkpoints up to epoch ${summary.maxEpoch} (offset ${summary.maxNextOffset}) and the log still starts at ${logStart}: ` +
      'reading from the beginning would count those events again (were the group offsets deleted, did they expire after offsets.retention.minutes, or is this a fresh broker with an old ClickHouse?)',
    'Local development: stop Tributary and run `tributary reset --yes`. Production: if the topic is the same, commit the offset the furthest checkpoint reached ' +
      `(an upper bound of what was counted: the last epoch before it may not have been written) with ${consumerGroups(s, `--to-offset ${summary.maxNextOffset}`)}, ` +
      "which resumes with a fresh aggregation state there; if the broker is new, point the aggregator at a fresh ClickHouse or delete this group's rows from aggregator_checkpoints deliberately — " +
      SEE,
  );
}

/** Metadata of ours this version cannot read. */
export function unreadableMetadata(s: PartitionScope, metadata: string): FatalAggregatorError {
  return mismatch(s, `the committed offset carries metadata ${JSON.stringify(metadata.slice(0, 200))}, which this version cannot read`, `Run the Tributary version that wrote it — ${SEE}`);
}
