import type { Admin, Consumer, EachBatchPayload } from 'kafkajs';
import type { CommitAnswer, CommittedPosition, OffsetStore } from './epoch-ports.ts';
import { errorMessage } from '../../shared/errors.ts';

/** Broker answers that mean the group moved on: this member may no longer own the partition. */
const FENCING_ERRORS: ReadonlySet<string> = new Set(['ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'REBALANCE_IN_PROGRESS', 'FENCED_INSTANCE_ID']);

/** The broker error type of a kafkajs error, looking through retry wrappers (`cause`). */
export function kafkaErrorType(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string') return type;
  }
  return undefined;
}

/** How a thrown commit is answered: fenced by the group, or failed for any other reason. */
export function answerForCommitError(err: unknown): CommitAnswer {
  const type = kafkaErrorType(err);
  const reason = `${type ? `${type}: ` : ''}${errorMessage(err)}`;
  return type !== undefined && FENCING_ERRORS.has(type) ? { kind: 'fenced', reason } : { kind: 'failed', reason };
}

/**
 * The consumer group's offsets through kafkajs, with commits that count only when confirmed:
 * `consumer.commitOffsets` can resolve without committing anything (kafkajs 2.2.4 returns early
 * while its runner is not running, e.g. during the restart after a broker outage, and for an empty
 * topic list), so every commit is read back from the coordinator (`admin.fetchOffsets`, one
 * OffsetFetch round trip) and answers `committed` only if the group holds exactly our offset and
 * metadata, which names a checkpoint id no other commit uses.
 *
 * Where it can, the commit goes out once, without kafkajs' retries: `consumer.commitOffsets`
 * retries a commit refused with ILLEGAL_GENERATION or REBALANCE_IN_PROGRESS for seconds, and a
 * retry sent after the consumer rejoined carries the *new* generation, so the broker accepts a
 * commit of a partition that may meanwhile belong to another member (which restored the previous
 * checkpoint): a zombie commit that a read-back cannot tell from a good one. The eachBatch
 * payload's `commitOffsetsIfNecessary(offsets)` commits straight through the consumer group,
 * once; `directCommit` hands it in (kafka-runner.ts keeps the latest one), and a refusal is
 * answered `fenced` at once.
 */
export function createKafkaOffsetStore(o: {
  consumer: Pick<Consumer, 'commitOffsets'>;
  admin: Pick<Admin, 'fetchOffsets' | 'fetchTopicOffsets'>;
  groupId: string;
  topic: string;
  /** The latest eachBatch payload's single-attempt commit, once a batch has been fetched. */
  directCommit?: () => EachBatchPayload['commitOffsetsIfNecessary'] | undefined;
}): OffsetStore {
  async function read(partition: number): Promise<CommittedPosition> {
    const [committed] = await o.admin.fetchOffsets({ groupId: o.groupId, topics: [o.topic] });
    const entry = committed?.partitions.find((p) => p.partition === partition);
    // Negative offsets are no position: -1 is "never committed", and kafkajs itself commits -2
    // (its "earliest" sentinel, without metadata) when a fetch runs out of range.
    const offset = entry && /^\d+$/.test(entry.offset) ? entry.offset : undefined;
    return { offset, metadata: offset !== undefined ? (entry?.metadata ?? undefined) : undefined };
  }
  return {
    read,
    async commit(partition, offset, metadata) {
      try {
        const direct = o.directCommit?.();
        // kafkajs' Offsets type omits metadata; its OffsetCommit request carries it per partition.
        if (direct) await direct({ topics: [{ topic: o.topic, partitions: [{ partition, offset, metadata } as { partition: number; offset: string }] }] });
        else await o.consumer.commitOffsets([{ topic: o.topic, partition, offset, metadata }]);
      } catch (err) {
        return answerForCommitError(err);
      }
      let seen: CommittedPosition;
      try {
        seen = await read(partition);
      } catch (err) {
        return { kind: 'failed', reason: `the commit resolved but could not be read back: ${errorMessage(err)}` };
      }
      if (seen.offset === offset && seen.metadata === metadata) return { kind: 'committed' };
      return { kind: 'failed', reason: `the commit resolved but the group holds offset ${seen.offset ?? 'none'} with metadata ${JSON.stringify(seen.metadata ?? null)}` };
    },
    async logStart(partition) {
      const offsets = await o.admin.fetchTopicOffsets(o.topic);
      const entry = offsets.find((p) => p.partition === partition);
      if (!entry) throw new Error(`topic ${o.topic} has no partition ${partition}`);
      return entry.low;
    },
  };
}
