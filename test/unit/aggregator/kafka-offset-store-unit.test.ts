import type { EachBatchPayload } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { createKafkaOffsetStore } from '../../../core/aggregator/kafka-offset-store.ts';

const TOPIC = 'partials';
type Offsets = Parameters<EachBatchPayload['commitOffsetsIfNecessary']>[0];

/** A group coordinator of one partition: what was committed is what fetchOffsets reads back. */
function fakeGroup() {
  const state = { offset: '-1', metadata: null as string | null, viaConsumer: 0, viaDirect: 0 };
  const commit = (offset: string, metadata: string | null) => {
    state.offset = offset;
    state.metadata = metadata;
  };
  return {
    state,
    consumer: {
      async commitOffsets(list: Array<{ topic: string; partition: number; offset: string; metadata?: string | null }>) {
        state.viaConsumer++;
        for (const c of list) commit(c.offset, c.metadata ?? null);
      },
    },
    admin: {
      fetchOffsets: async () => [{ topic: TOPIC, partitions: [{ partition: 0, offset: state.offset, metadata: state.metadata }] }],
      fetchTopicOffsets: async () => [{ partition: 0, offset: '0', high: '0', low: '0' }],
    },
    direct: (async (offsets?: Offsets) => {
      state.viaDirect++;
      for (const t of offsets?.topics ?? []) for (const p of t.partitions) commit(p.offset, (p as { metadata?: string }).metadata ?? null);
    }) as EachBatchPayload['commitOffsetsIfNecessary'],
  };
}

describe('kafka offset store', () => {
  it('commits once through the fetched batch’s consumer group when it has one, metadata included', async () => {
    const g = fakeGroup();
    const store = createKafkaOffsetStore({ consumer: g.consumer, admin: g.admin, groupId: 'g', topic: TOPIC, directCommit: () => g.direct });
    expect(await store.commit(0, '42', 'tributary:v2:3:abc')).toEqual({ kind: 'committed' });
    expect(g.state).toMatchObject({ offset: '42', metadata: 'tributary:v2:3:abc', viaDirect: 1, viaConsumer: 0 });
  });

  it('answers fenced at once when the single attempt is refused by the group, and never retries it through the consumer', async () => {
    const g = fakeGroup();
    const refused = Object.assign(new Error('The provided member is not known in the current generation'), { type: 'ILLEGAL_GENERATION' });
    const store = createKafkaOffsetStore({ consumer: g.consumer, admin: g.admin, groupId: 'g', topic: TOPIC, directCommit: () => async () => Promise.reject(refused) });
    const answer = await store.commit(0, '42', 'tributary:v2:3:abc');
    expect(answer.kind).toBe('fenced');
    expect(g.state).toMatchObject({ offset: '-1', viaConsumer: 0 });
  });

  it('falls back to the consumer before any batch was fetched, and still only trusts the read-back', async () => {
    const g = fakeGroup();
    const store = createKafkaOffsetStore({ consumer: g.consumer, admin: g.admin, groupId: 'g', topic: TOPIC, directCommit: () => undefined });
    expect(await store.commit(0, '7', 'tributary:v2:1:x')).toEqual({ kind: 'committed' });
    expect(g.state.viaConsumer).toBe(1);
    // A commit that resolves without committing (kafkajs while its consumer restarts) is not confirmed.
    const silent = createKafkaOffsetStore({ consumer: { commitOffsets: async () => undefined }, admin: g.admin, groupId: 'g', topic: TOPIC });
    expect((await silent.commit(0, '9', 'tributary:v2:2:y')).kind).toBe('failed');
  });
});
