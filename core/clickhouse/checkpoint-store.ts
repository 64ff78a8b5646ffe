import { decodeInserts, decodeLegacyEmission, encodeInserts, type Checkpoint, type CheckpointStore } from '../aggregator/checkpoint.ts';
import type { PartitionSnapshot } from '../aggregator/partition-aggregator.ts';
import type { ClickHouse } from './client.ts';
import type { EmissionWriter } from './emission-writer.ts';
import { RowBinaryWriter } from './row-binary.ts';
import type { RowBinaryInsert } from './row-binary-insert.ts';

// Encoded types (core/clickhouse/row-binary.ts); the table is in schemas/clickhouse/003 and 007.
// `emission` is the pre-ADR 0008 form, left empty now; `inserts` holds the epoch's inserts.
const CHECKPOINT_COLUMNS: RowBinaryInsert['columns'] = [
  ['group_id', 'String'], ['topic', 'String'], ['partition', 'UInt16'], ['epoch', 'UInt64'], ['checkpoint_id', 'String'],
  ['next_offset', 'String'], ['state', 'String'], ['emission', 'String'], ['inserts', 'String'], ['created_at', "DateTime64(3, 'UTC')"],
];

/**
 * Checkpoints in ClickHouse: the store every aggregator process already shares. `writer`
 * re-encodes checkpoints written before ADR 0008, which kept the emission instead of its inserts.
 */
export function createClickHouseCheckpointStore(clickhouse: Pick<ClickHouse, 'client' | 'insertRowBinary'>, writer: Pick<EmissionWriter, 'encode'>): CheckpointStore {
  const { client } = clickhouse;
  return {
    async save(c) {
      const inserts = encodeInserts(c.emission);
      const w = new RowBinaryWriter(inserts.length + 4096);
      w.string(c.groupId);
      w.string(c.topic);
      w.uint16(c.partition);
      w.uint64(c.epoch);
      w.string(c.checkpointId);
      w.string(c.nextOffset);
      w.string(JSON.stringify(c.state));
      w.string('');
      w.uvarint(inserts.length); // a String of bytes
      w.bytes(inserts);
      w.dateTime64Ms(Date.now());
      await clickhouse.insertRowBinary({
        table: 'aggregator_checkpoints',
        columns: CHECKPOINT_COLUMNS,
        rows: w.finish(),
        // The id is unique per attempt, so a retry of the same save is deduplicated and nothing else is.
        settings: { insert_deduplication_token: `checkpoint:${c.checkpointId}` },
      });
    },
    async load(key) {
      const rs = await client.query({
        query: `SELECT next_offset, state, emission, base64Encode(inserts) AS inserts FROM aggregator_checkpoints
                WHERE group_id = {group_id:String} AND topic = {topic:String} AND partition = {partition:UInt16}
                  AND epoch = {epoch:UInt64} AND checkpoint_id = {checkpoint_id:String}
                LIMIT 1`,
        query_params: { group_id: key.groupId, topic: key.topic, partition: key.partition, epoch: key.epoch, checkpoint_id: key.checkpointId },
        format: 'JSONEachRow',
      });
      const [row] = await rs.json<{ next_offset: string; state: string; emission: string; inserts: string }>();
      if (!row) return undefined;
      let emission: Checkpoint['emission'];
      if (row.inserts !== '') {
        emission = decodeInserts(new Uint8Array(Buffer.from(row.inserts, 'base64')));
      } else {
        const legacy = JSON.parse(row.emission) as { deltas: string; rest: string };
        emission = writer.encode(decodeLegacyEmission(new Uint8Array(Buffer.from(legacy.deltas, 'base64')), legacy.rest), key.partition, Date.now());
      }
      return { ...key, nextOffset: row.next_offset, state: JSON.parse(row.state) as PartitionSnapshot, emission } satisfies Checkpoint;
    },
    async summary(key) {
      const rs = await client.query({
        query: `SELECT count() AS n, max(epoch) AS max_epoch, max(toUInt64OrZero(next_offset)) AS max_next_offset FROM aggregator_checkpoints
                WHERE group_id = {group_id:String} AND topic = {topic:String} AND partition = {partition:UInt16}`,
        query_params: { group_id: key.groupId, topic: key.topic, partition: key.partition },
        format: 'JSONEachRow',
      });
      const [row] = await rs.json<{ n: string | number; max_epoch: string | number; max_next_offset: string | number }>();
      if (!row || Number(row.n) === 0) return undefined;
      return { maxEpoch: Number(row.max_epoch), maxNextOffset: String(row.max_next_offset) };
    },
  };
}
