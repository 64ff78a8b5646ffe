import type { ClickHouseClient } from '@clickhouse/client';
import { decodeEmission, encodeEmission, type Checkpoint, type CheckpointStore } from '../aggregator/checkpoint.ts';
import type { PartitionSnapshot } from '../aggregator/partition-aggregator.ts';
import { toClickHouseTime } from './datetime.ts';

/** Checkpoints in ClickHouse: the store every aggregator process already shares. */
export function createClickHouseCheckpointStore(client: ClickHouseClient): CheckpointStore {
  return {
    async save(c) {
      const { deltas, rest } = encodeEmission(c.emission);
      await client.insert({
        table: 'aggregator_checkpoints',
        values: [{
          group_id: c.groupId,
          topic: c.topic,
          partition: c.partition,
          epoch: c.epoch,
          checkpoint_id: c.checkpointId,
          next_offset: c.nextOffset,
          state: JSON.stringify(c.state),
          emission: JSON.stringify({ deltas: Buffer.from(deltas).toString('base64'), rest }),
          created_at: toClickHouseTime(Date.now()),
        }],
        format: 'JSONEachRow',
        // The id is unique per attempt, so a retry of the same save is deduplicated and nothing else is.
        clickhouse_settings: { insert_deduplication_token: `checkpoint:${c.checkpointId}` },
      });
    },
    async load(key) {
      const rs = await client.query({
        query: `SELECT next_offset, state, emission FROM aggregator_checkpoints
                WHERE group_id = {group_id:String} AND topic = {topic:String} AND partition = {partition:UInt16}
                  AND epoch = {epoch:UInt64} AND checkpoint_id = {checkpoint_id:String}
                LIMIT 1`,
        query_params: { group_id: key.groupId, topic: key.topic, partition: key.partition, epoch: key.epoch, checkpoint_id: key.checkpointId },
        format: 'JSONEachRow',
      });
      const [row] = await rs.json<{ next_offset: string; state: string; emission: string }>();
      if (!row) return undefined;
      const emission = JSON.parse(row.emission) as { deltas: string; rest: string };
      return {
        ...key,
        nextOffset: row.next_offset,
        state: JSON.parse(row.state) as PartitionSnapshot,
        emission: decodeEmission(new Uint8Array(Buffer.from(emission.deltas, 'base64')), emission.rest),
      } satisfies Checkpoint;
    },
  };
}
