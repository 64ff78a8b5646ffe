import { describe, expect, it } from 'vitest';
import { emissionToken } from '../../../core/aggregator/checkpoint.ts';
import { Incarnation, World, GROUP, TOPIC, type CrashPoint } from './epoch-world.ts';

// The epoch protocol of ADR 0003 against fakes of its ports: every crash point and broker answer,
// checked against the input. The fake ClickHouse deduplicates by token like
// insert_deduplication_token (a second insert under a used token is dropped), so a token reused
// for different contents shows up as lost events, and a write that should not have happened as
// events counted twice.

/** Two partitions, three sources, one edge retry of an envelope that had landed, one poison record. */
function workload(world: World, envelopes = 12): void {
  for (let i = 0; i < envelopes; i++) {
    world.append(0, 'edge-a', 'alpha', 3 + (i % 4));
    world.append(1, 'edge-b', 'beta', 5 + (i % 3));
    if (i % 3 === 0) world.append(0, 'edge-c', 'alpha', 2, { windowOffset: 1 });
    if (i === 5) world.append(0, 'edge-a', 'alpha', 99, { resend: true });
    if (i === 7) world.appendGarbage(1);
  }
}

/**
 * A world with the standard workload (or none) and an incarnation that owns `partitions`: the
 * set-up most cases share.
 */
function joined(o: { envelopes?: number; partitions?: number[]; commitScript?: World['commitScript']; incarnation?: ConstructorParameters<typeof Incarnation>[1] } = {}): { world: World; inc: Incarnation } {
  const world = new World();
  workload(world, o.envelopes);
  if (o.commitScript) world.commitScript = o.commitScript;
  const inc = new Incarnation(world, o.incarnation);
  inc.join(o.partitions ?? [0, 1]);
  return { world, inc };
}

/** A world whose first incarnation read everything, committed and closed cleanly. */
async function afterCleanRun(envelopes?: number): Promise<World> {
  const { world, inc } = joined({ envelopes });
  expect(await inc.run([0, 1])).toBe(true);
  inc.committer.close();
  return world;
}

function expectExact(world: World): void {
  expect(world.violations).toEqual([]);
  expect(world.countedSorted()).toEqual(world.expectedSorted());
}

/** Every checkpoint that may ever become authoritative has a token no other content shares. */
function expectDistinctTokens(world: World): void {
  const byToken = new Map<string, string>();
  for (const c of world.checkpoints.values()) {
    const token = emissionToken({ groupId: GROUP, topic: TOPIC, partition: c.partition }, { version: 2, epoch: c.epoch, checkpointId: c.checkpointId });
    const content = JSON.stringify([c.nextOffset, c.emission.parts.map((p) => [p.table, Buffer.from(p.bytes).toString('base64')])]);
    const other = byToken.get(token);
    if (other !== undefined) expect(other, `token ${token} names two checkpoints`).toBe(content);
    byToken.set(token, content);
  }
}

/** Runs `then` once, right after the checkpoint store first holds `count` checkpoints (inside that save). */
function onCheckpointCount(world: World, count: number, then: () => void): void {
  const original = world.checkpoints.set.bind(world.checkpoints);
  let fired = false;
  world.checkpoints.set = (key, value) => {
    const r = original(key, value);
    if (!fired && world.checkpoints.size === count) {
      fired = true;
      then();
    }
    return r;
  };
}

describe('epoch committer: broker answers', () => {
  it('writes every event exactly once without faults', async () => {
    const { world, inc } = joined();
    expect(await inc.run([0, 1])).toBe(true);
    expectExact(world);
    expectDistinctTokens(world);
    expect(inc.committer.stats().deadLettered).toBe(1);
    expect(inc.committer.stats().duplicates).toBe(1);
  });

  it('does not count a commit that resolved without committing (kafkajs while its runner restarts after an outage)', async () => {
    const { world, inc } = joined({ envelopes: 16 });
    for (let i = 0; i < 3; i++) for (const p of [0, 1]) await inc.batch(p);
    await inc.committer.flushAll();
    // The broker comes back: commits resolve and commit nothing, then the group is rejoined.
    world.commitScript = ['silent', 'silent', 'silent', 'silent'];
    for (let i = 0; i < 3; i++) for (const p of [0, 1]) await inc.batch(p);
    await inc.committer.flushAll();
    inc.join([0, 1]);
    expect(await inc.run([0, 1])).toBe(true);
    expectExact(world);
    expect(inc.events('offset_commit_unconfirmed').length).toBeGreaterThan(0);
    expect(inc.events('partition_abandoned').length).toBeGreaterThan(0);
    expect(inc.committer.stats().commitsRefused).toBeGreaterThan(0);
  });

  it('resumes from the last confirmed checkpoint after a commit that throws', async () => {
    const { world, inc } = joined({ commitScript: ['ok', 'ok', 'throw', 'ok', 'throw', 'throw'] });
    expect(await inc.run([0, 1])).toBe(true);
    expectExact(world);
    expect(inc.committer.stats().commitsRefused).toBe(3);
    expect(inc.events('offset_commit_unconfirmed').map((e) => e.reason)).toContainEqual(expect.stringContaining('ECONNREFUSED'));
  });

  it('treats a fenced commit (ILLEGAL_GENERATION) as not having happened', async () => {
    const { world, inc } = joined({ commitScript: ['ok', 'fenced', 'ok', 'fenced'] });
    expect(await inc.run([0, 1])).toBe(true);
    expectExact(world);
    expect(inc.events('offset_commit_fenced')).toHaveLength(2);
  });

  it('reports as committed (lag) only offsets whose commit was confirmed', async () => {
    const world = new World();
    workload(world);
    const reported: Array<{ p: number; committed: string; broker: string | undefined }> = [];
    const inc = new Incarnation(world, {
      hooks: {
        offsets: (p, o) => {
          if (o.committed !== undefined) reported.push({ p, committed: o.committed, broker: world.committed.get(p)?.offset });
        },
      },
    });
    world.commitScript = ['ok', 'silent', 'silent', 'throw', 'ok', 'silent'];
    inc.join([0, 1]);
    expect(await inc.run([0, 1])).toBe(true);
    expectExact(world);
    // Before a partition's first commit the "committed" position is where its input starts (0).
    for (const r of reported) expect(r.committed === '0' || r.committed === r.broker, JSON.stringify(r)).toBe(true);
  });
});

describe('epoch committer: rebalances and generations', () => {
  it('loses and double counts nothing when partitions move to another process mid-epoch', async () => {
    const { world, inc: a } = joined({ envelopes: 16 });
    for (let i = 0; i < 3; i++) for (const p of [0, 1]) await a.batch(p);
    // Pending deltas of both partitions are not flushed: the rebalance takes partition 1 away.
    a.join([0]);
    const b = new Incarnation(world);
    b.join([1]);
    expect(await a.run([0])).toBe(true);
    expect(await b.run([1])).toBe(true);
    await a.committer.flushAll();
    expectExact(world);
  });

  it('never commits for a runtime of an older generation (rebalance between checkpoint and commit)', async () => {
    const world = new World();
    workload(world);
    const inc = new Incarnation(world);
    onCheckpointCount(world, 3, () => inc.join([0, 1]));
    inc.join([0, 1]);
    expect(await inc.run([0, 1])).toBe(true);
    expectExact(world);
    expect(inc.events('partition_abandoned').map((e) => e.reason)).toContain('rebalanced_before_commit');
  });

  it('gives up every partition when the consumer crashes: the epoch being written does not commit, the rejoin restores', async () => {
    const world = new World();
    workload(world);
    let crashed = false;
    const inc = new Incarnation(world);
    let commitsAtCrash = -1;
    onCheckpointCount(world, 3, () => {
      // The consumer crashed (its group membership is gone) while this epoch's checkpoint was being saved.
      crashed = true;
      commitsAtCrash = world.commitsAttempted;
      inc.committer.revoked('consumer_crashed');
    });
    inc.join([0, 1]);
    for (let i = 0; i < 10 && !crashed; i++) {
      for (const p of [0, 1]) await inc.batch(p);
      await inc.committer.flushAll();
    }
    expect(crashed).toBe(true);
    // Nothing of the old generation was committed after the crash, and nothing is owned until the rejoin.
    expect(world.commitsAttempted).toBe(commitsAtCrash);
    expect(inc.committer.owned()).toEqual([]);
    expect(inc.events('partitions_revoked')).toEqual([expect.objectContaining({ partitions: [0, 1], reason: 'consumer_crashed' })]);
    expect(inc.events('partition_abandoned').map((e) => e.reason)).toContain('rebalanced_before_commit');
    // The restarted consumer rejoins: every partition restores from its committed checkpoint.
    inc.join([0, 1]);
    expect(await inc.run([0, 1])).toBe(true);
    expectExact(world);
  });

  it('leaves the emission of a commit confirmed during a rebalance to whoever restores it', async () => {
    const world = new World();
    workload(world);
    let commits = 0;
    const holder: { inc?: Incarnation } = {};
    const inc = new Incarnation(world, {
      offsets: (inner) => ({
        ...inner,
        async commit(p, offset, metadata) {
          const answer = await inner.commit(p, offset, metadata);
          if (++commits === 3) holder.inc?.join([0, 1]);
          return answer;
        },
      }),
    });
    holder.inc = inc;
    inc.join([0, 1]);
    expect(await inc.run([0, 1])).toBe(true);
    expectExact(world);
    expect(inc.events('partition_abandoned').map((e) => e.reason)).toContain('rebalanced_during_commit');
  });
});

describe('epoch committer: crash points', () => {
  const points: Array<[CrashPoint, number[]]> = [
    ['after_checkpoint', [1, 2, 5]],
    ['after_commit', [1, 2, 5]],
    ['after_table:agg_minute', [1, 2, 5]],
    ['after_table:window_status', [1, 2, 5]],
    // Progress is recorded once per minute of watermark.
    ['after_table:partition_progress', [1, 2]],
  ];
  for (const [at, countdowns] of points) {
    for (const countdown of countdowns) {
      it(`restarts exactly after a crash ${at.replace('_', ' ')} (occurrence ${countdown})`, async () => {
        const world = new World();
        workload(world);
        world.crash = { at, countdown };
        const first = new Incarnation(world);
        first.join([0, 1]);
        const finished = await first.run([0, 1]);
        expect(finished, 'the crash point was reached').toBe(false);
        first.committer.close();
        const pointers = world.committed.size;
        const second = new Incarnation(world);
        second.join([0, 1]);
        expect(await second.run([0, 1])).toBe(true);
        expectExact(world);
        expectDistinctTokens(world);
        expect(second.committer.stats().restores).toBe(pointers);
      });
    }
  }

  it('crashes twice in a row and still ends exact', async () => {
    const world = new World();
    workload(world, 20);
    for (const crash of [{ at: 'after_commit' as const, countdown: 3 }, { at: 'after_table:agg_minute' as const, countdown: 2 }]) {
      world.crash = crash;
      const inc = new Incarnation(world);
      inc.join([0, 1]);
      expect(await inc.run([0, 1])).toBe(false);
      inc.committer.close();
    }
    const last = new Incarnation(world);
    last.join([0, 1]);
    expect(await last.run([0, 1])).toBe(true);
    expectExact(world);
  });
});

describe('epoch committer: deduplication tokens', () => {
  it('gives a re-used epoch number (restore after an unconfirmed commit) a token of its own', async () => {
    const world = new World();
    for (let i = 0; i < 12; i++) world.append(1, 'edge-b', 'beta', 5);
    world.commitScript = ['ok', 'silent'];
    const inc = new Incarnation(world);
    inc.join([1]);
    while (world.commitsAttempted < 2) {
      await inc.batch(1, 2);
      await inc.committer.flushAll();
    }
    // Restored from epoch 1, the partition cuts epoch 2 again, over more input this time.
    expect(await inc.run([1], 5)).toBe(true);
    expectExact(world);
    const epoch2 = world.checkpointRowsFor(1, 2);
    expect(epoch2).toHaveLength(2);
    expect(epoch2[0]!.nextOffset).not.toBe(epoch2[1]!.nextOffset);
    expectDistinctTokens(world);
  });

  it('counts the epochs after a deliberate offset reset, whose numbers start over', async () => {
    const world = await afterCleanRun(8);
    expectExact(world);
    // An operator resets the group (kafka-consumer-groups --reset-offsets keeps no metadata) to
    // where it was; new input arrives; the next aggregator starts a fresh state at epoch 1.
    for (const p of [0, 1]) world.committed.set(p, { offset: String(world.log.get(p)!.length), metadata: null });
    for (let i = 0; i < 8; i++) {
      world.append(0, 'edge-a', 'alpha', 10);
      world.append(1, 'edge-b', 'beta', 10);
    }
    const second = new Incarnation(world);
    second.join([0, 1]);
    expect(await second.run([0, 1])).toBe(true);
    expectExact(world);
  });

  it('restores a v1 checkpoint pointer (written before commits were confirmed) with its v1 token', async () => {
    const world = new World();
    workload(world);
    // The previous version committed epoch 3 of partition 0 and crashed; its emission had landed
    // under the v1 token (epoch number).
    world.crash = { at: 'after_commit', countdown: 3 };
    const old = new Incarnation(world);
    old.join([0]);
    expect(await old.run([0])).toBe(false);
    old.committer.close();
    const pointer = world.committed.get(0)!;
    const [, , epoch, id] = pointer.metadata!.split(':');
    const checkpoint = world.checkpoints.get(id!)!;
    world.committed.set(0, { offset: pointer.offset, metadata: `tributary:v1:${epoch}:${id}` });
    for (const part of checkpoint.emission.parts) world.insert(`${GROUP}:${TOPIC}:0:e${epoch}:${part.table}`, part.table, part.bytes);
    const upgraded = new Incarnation(world);
    upgraded.join([0, 1]);
    expect(await upgraded.run([0, 1])).toBe(true);
    expectExact(world);
    expect(upgraded.events('partition_restored')).toContainEqual(expect.objectContaining({ partition: 0, metadata_version: 1 }));
    expect(world.tokensPresented).toContain(`${GROUP}:${TOPIC}:0:e${epoch}:agg_minute`);
  });
});

describe('epoch committer: idle partitions', () => {
  it('checkpoint again before the named checkpoint can expire (7-day TTL), with nothing new to write', async () => {
    const { world, inc } = joined({ envelopes: 4 });
    expect(await inc.run([0, 1])).toBe(true);
    const before = world.committed.get(0)!;
    world.now += 3_600_000;
    inc.committer.tick();
    await inc.committer.flushAll();
    expect(world.committed.get(0)).toEqual(before);
    world.now += 86_400_000;
    inc.committer.tick();
    await inc.committer.flushAll();
    const after = world.committed.get(0)!;
    expect(after.offset).toBe(before.offset);
    expect(after.metadata).not.toBe(before.metadata);
    expectExact(world);
  });
});

describe('epoch committer: state mismatch and ClickHouse errors', () => {
  it('stops with what to run when the committed offset names a checkpoint this ClickHouse does not have', async () => {
    const world = new World();
    workload(world);
    world.committed.set(0, { offset: '5', metadata: 'tributary:v2:3:0d7c9a52-checkpoint-of-another-clickhouse' });
    const inc = new Incarnation(world);
    inc.join([0, 1]);
    const err = await inc.committer.fatal;
    expect(err.message).toContain('0d7c9a52-checkpoint-of-another-clickhouse');
    expect(err.message).toContain('tributary reset --yes');
    expect(err.message).toContain(`kafka-consumer-groups.sh --bootstrap-server <brokers> --group ${GROUP} --topic ${TOPIC}:0 --reset-offsets`);
    const commits = world.commitsAttempted;
    await inc.batch(1);
    await inc.committer.flushAll();
    inc.committer.tick();
    expect(world.commitsAttempted).toBe(commits);
    expect(inc.events('aggregator_fatal')).toHaveLength(1);
    expect(inc.committer.failure()).toBe(err);
  });

  it('stops when the broker lost the offsets of a partition whose confirmed progress is in ClickHouse', async () => {
    const world = await afterCleanRun();
    world.committed.delete(1); // offsets expired, or a fresh broker with the old data dir of ClickHouse
    const second = new Incarnation(world);
    second.join([0, 1]);
    const err = await second.committer.fatal;
    expect(err.message).toContain('reading from the beginning would count those events again');
    expect(err.message).toContain('--reset-offsets --to-offset');
    expectExact(world);
  });

  it('does not take kafkajs\' out-of-range reset (offset -2 without metadata) for a position', async () => {
    const world = await afterCleanRun();
    // kafkajs commits its "earliest" sentinel when a fetch runs out of range, dropping our metadata.
    world.committed.set(0, { offset: '-2', metadata: null });
    const second = new Incarnation(world);
    second.join([0, 1]);
    const err = await second.committer.fatal;
    expect(err.message).toContain('[0]');
    expect(err.message).toContain('the broker has no committed offset');
    expect(world.commitsAttempted).toBeGreaterThan(0);
    expect([...world.committed.values()].every((c) => !c.offset.startsWith('-') || c.metadata === null)).toBe(true);
  });

  it('says loudly when records were skipped over (gone from the log before they were read)', async () => {
    const { world, inc } = joined({ envelopes: 6, partitions: [1] });
    const list = world.log.get(1)!;
    const batch = (from: number, to: number) =>
      inc.committer.ingest({
        partition: 1,
        messages: list.slice(from, to).map((e, i) => ({ offset: String(from + i), value: e.bytes })),
        highWatermark: String(list.length),
        active: () => true,
        resolveOffset: () => undefined,
        heartbeat: async () => undefined,
      });
    await batch(0, 2);
    // Retention deleted offsets 2-4 before they were read: the log now starts at 5.
    world.logStarts.set(1, 5);
    await batch(5, 7);
    expect(inc.committer.stats().inputRecordsMissing).toBe(3);
    expect(inc.events('input_records_missing')).toEqual([expect.objectContaining({ level: 'error', partition: 1, from_offset: '2', to_offset: '5', count: '3' })]);
  });

  it('starts from the beginning when only an unconfirmed first checkpoint exists', async () => {
    const world = new World();
    workload(world);
    world.commitScript = ['silent'];
    world.crash = { at: 'after_commit', countdown: 1 }; // the second commit attempt (the first was silent)
    const first = new Incarnation(world);
    first.join([0]);
    expect(await first.run([0])).toBe(false);
    first.committer.close();
    world.committed.delete(0);
    const second = new Incarnation(world);
    second.join([0, 1]);
    expect(await second.run([0, 1])).toBe(true);
    expect(second.committer.failure()).toBeUndefined();
    // The first process wrote nothing for its unconfirmed epoch; its confirmed one is re-read: counted
    // again in the fake, which is why the check looks for epochs >= 2 only (ADR 0003 "State mismatch").
    expect(world.violations).toEqual([]);
  });

  it('backs off and retries the same write while ClickHouse refuses it transiently', async () => {
    const { world, inc } = joined();
    for (const p of [0, 1]) await inc.batch(p);
    world.clickhouseRefusals = 7;
    expect(await inc.run([0, 1])).toBe(true);
    expectExact(world);
    expect(inc.committer.stats().writeFailures).toBe(7);
    expect(inc.events('clickhouse_write_failed')).toHaveLength(7);
  });

  it('stops with a clear message on a permanent ClickHouse error and commits nothing more', async () => {
    const { world, inc } = joined();
    for (const p of [0, 1]) await inc.batch(p);
    await inc.committer.flushAll();
    world.clickhousePermanent = Object.assign(new Error('Code: 60. DB::Exception: Unknown table expression identifier \'agg_minute\'. (UNKNOWN_TABLE)'), { code: '60', type: 'UNKNOWN_TABLE' });
    for (const p of [0, 1]) await inc.batch(p);
    await inc.committer.flushAll();
    const err = await inc.committer.fatal;
    expect(err.message).toContain('UNKNOWN_TABLE');
    expect(err.message).toContain('tributary migrate');
    const commits = world.commitsAttempted;
    world.clickhousePermanent = undefined;
    for (const p of [0, 1]) await inc.batch(p);
    await inc.committer.flushAll();
    expect(world.commitsAttempted).toBe(commits);
  });
});

describe('epoch committer: fetch position', () => {
  it('goes back for records still in the log when the fetch position ran ahead of its state (a seek that failed while the consumer restarted)', async () => {
    const { world, inc } = joined({ envelopes: 16 });
    for (let i = 0; i < 3; i++) for (const p of [0, 1]) await inc.batch(p);
    await inc.committer.flushAll();
    // The consumer resumes two records past what the partition's state has taken.
    const taken = Number(world.committed.get(0)?.offset ?? 0);
    inc.fetchPos.set(0, taken + 2);
    expect(await inc.run([0, 1])).toBe(true);
    expectExact(world);
    expect(inc.events('fetch_position_ahead').length).toBeGreaterThan(0);
    expect(inc.committer.stats().inputRecordsMissing).toBe(0);
  });
});
