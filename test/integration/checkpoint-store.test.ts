import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addToPartial, emptyPartial, hash64 } from '../../shared/algebra/index.ts';
import { dimsKeyOf, type Emission } from '../../core/aggregator/emission.ts';
import type { PartitionSnapshot } from '../../core/aggregator/partition-aggregator.ts';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { createClickHouseCheckpointStore } from '../../core/clickhouse/checkpoint-store.ts';
import { createEmissionWriter } from '../../core/clickhouse/emission-writer.ts';
import { toClickHouseTime } from '../../core/clickhouse/datetime.ts';
import { encodeLegacyEmission } from '../support/legacy-checkpoint.ts';
import { openTestClickHouse } from './helpers/aggregator-harness.ts';

// A checkpoint keeps the epoch's inserts byte for byte (ADR 0008), and checkpoints written in
// the earlier form (the emission itself) must still restore after an upgrade.

let ch: ClickHouse;
beforeAll(async () => {
  ch = await openTestClickHouse('trib-checkpoints');
});
afterAll(async () => ch.close());

const T0 = Date.UTC(2026, 0, 1, 10, 0);
const state: PartitionSnapshot = { lastSequence: [['edge-a#0', 7]], watermarks: { sources: [] }, windows: [] } as unknown as PartitionSnapshot;

function emission(): Emission {
  const partial = emptyPartial();
  addToPartial(partial, { user: hash64('u1'), value: 12 });
  addToPartial(partial, { user: hash64('u2'), value: 30 });
  const dims: Array<[string, string]> = [['country', 'DE'], ['path', '/ü']];
  return {
    deltas: [{ site: 's', event: 'e', windowStartMs: T0, windowSizeMs: 60_000, dims, dimsKey: dimsKeyOf(dims), partial }],
    statuses: [],
    late: [{ site: 's', event: 'e', windowStartMs: T0 - 86_400_000 * 2, dimsKey: '', events: 3, reason: 'beyond_correction_horizon', sourceId: 'edge-a#1', sequence: 4, watermarkMs: T0, receivedAtMs: T0 + 5 }],
    watermarkMs: T0,
  };
}

describe('checkpoints in ClickHouse', () => {
  it('keep the inserts byte for byte, and the restored inserts write the same rows', async () => {
    const writer = createEmissionWriter(ch);
    const store = createClickHouseCheckpointStore(ch, writer);
    const encoded = writer.encode({ ...emission(), progressMs: T0 + 61_000 }, 3, T0 + 10);
    const key = { groupId: 'g1', topic: 'partials', partition: 3, epoch: 5, checkpointId: 'cp-new' };
    await store.save({ ...key, nextOffset: '42', state, emission: encoded });
    const loaded = await store.load(key);
    expect(loaded).toEqual({ ...key, nextOffset: '42', state, emission: encoded });
    expect(loaded?.emission.parts.map((p) => [p.table, p.rows])).toEqual([['agg_minute', 1], ['late_partials', 1], ['partition_progress', 1]]);

    await writer.writeEncoded(loaded!.emission, 'cp-restore-1');
    const rs = await ch.client.query({ query: `SELECT sum(events) AS events, sum(value_sum) AS total FROM agg_minute WHERE site = 's'`, format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([{ events: 2, total: 42 }]);
    expect(await store.load({ ...key, checkpointId: 'other' })).toBeUndefined();
  });

  it('restore a checkpoint written before ADR 0008 (the emission as JSON) by encoding it again', async () => {
    const writer = createEmissionWriter(ch);
    const store = createClickHouseCheckpointStore(ch, writer);
    const { deltas, rest } = encodeLegacyEmission(emission());
    // created_at now: the table's 7-day TTL would drop an older row on insert.
    await ch.client.insert({
      table: 'aggregator_checkpoints',
      format: 'JSONEachRow',
      values: [{ group_id: 'g2', topic: 'partials', partition: 1, epoch: 9, checkpoint_id: 'cp-old', next_offset: '17', state: JSON.stringify(state), emission: JSON.stringify({ deltas: Buffer.from(deltas).toString('base64'), rest }), created_at: toClickHouseTime(Date.now()) }],
    });
    const loaded = await store.load({ groupId: 'g2', topic: 'partials', partition: 1, epoch: 9, checkpointId: 'cp-old' });
    expect(loaded?.nextOffset).toBe('17');
    expect(loaded?.state).toEqual(state);
    // No statuses or progress in it, so the encoding does not depend on the restore time.
    expect(loaded?.emission).toEqual(writer.encode(emission(), 1, 0));
  });

  it('summarise a partition: its highest epoch and next offset, nothing for a partition without checkpoints', async () => {
    const writer = createEmissionWriter(ch);
    const store = createClickHouseCheckpointStore(ch, writer);
    const scope = { groupId: 'g3', topic: 'partials', partition: 2 };
    expect(await store.summary(scope)).toBeUndefined();
    for (const [epoch, nextOffset] of [[1, '9'], [2, '120'], [2, '95']] as const) {
      await store.save({ ...scope, epoch, checkpointId: `cp-${epoch}-${nextOffset}`, nextOffset, state, emission: { parts: [] } });
    }
    expect(await store.summary(scope)).toEqual({ maxEpoch: 2, maxNextOffset: '120' });
    expect(await store.summary({ ...scope, partition: 3 })).toBeUndefined();
  });
});
