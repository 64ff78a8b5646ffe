import type { Admin, Consumer } from 'kafkajs';
import { addToPartial, emptyPartial, encodeEnvelope, hash64 } from '../../../shared/algebra/index.ts';
import type { Checkpoint, CheckpointStore } from '../../../core/aggregator/checkpoint.ts';
import type { EncodedEmission, Emission } from '../../../core/aggregator/emission.ts';
import { createEpochCommitter, type AggregatorHooks, type EpochCommitter, type EpochCommitterOptions } from '../../../core/aggregator/epoch-committer.ts';
import type { EpochPorts, OffsetStore } from '../../../core/aggregator/epoch-ports.ts';
import { createKafkaOffsetStore } from '../../../core/aggregator/kafka-offset-store.ts';
import { silentLogger } from '../../../core/log.ts';

// A broker-free, database-free world for the epoch protocol: a log per partition, a group
// coordinator holding committed offsets + metadata (what kafkajs' consumer and admin see), a
// checkpoint table, and a ClickHouse stand-in that deduplicates inserts by token the way
// insert_deduplication_token does. Processes ("incarnations") come and go over the same durable
// state; a crash freezes an incarnation at the exact point (nothing of it runs any more).

export const T0 = 1_800_000_000_000; // window-aligned
export const EMIT_MS = 1_000;

/** How the next commit call of kafkajs' consumer behaves. */
export type CommitBehaviour =
  | 'ok'
  /** kafkajs 2.2.4 while its runner is not running: resolves, commits nothing. */
  | 'silent'
  /** The request failed (e.g. retries exhausted during an outage): nothing committed. */
  | 'throw'
  /** The coordinator refused the generation: nothing committed. */
  | 'fenced';

export type CrashPoint = 'after_checkpoint' | 'after_commit' | `after_table:${string}`;

export interface Violation {
  kind: string;
  detail: string;
}

interface Envelope {
  bytes: Uint8Array;
  events: number;
  site: string;
  duplicate: boolean;
}

export class World {
  readonly log = new Map<number, Envelope[]>();
  readonly committed = new Map<number, { offset: string; metadata: string | null }>();
  readonly checkpoints = new Map<string, Checkpoint>();
  /** Token → digest of the content first inserted under it (per table). */
  readonly tokens = new Map<string, string>();
  readonly counted = new Map<string, number>();
  readonly violations: Violation[] = [];
  readonly tokensPresented: string[] = [];
  commitScript: CommitBehaviour[] = [];
  crash: { at: CrashPoint; countdown: number } | undefined;
  /** The next N ClickHouse calls fail transiently. */
  clickhouseRefusals = 0;
  /** Every ClickHouse write fails with this error (a permanent one) while set. */
  clickhousePermanent: Error | undefined;
  commitsAttempted = 0;
  /** First offset still in each partition's log (retention moves it); 0 when unset. */
  readonly logStarts = new Map<number, number>();
  now = T0;
  private seq = new Map<string, number>();

  /** Appends an envelope of `events` events of `site` to partition `p`, from source `source`. */
  append(p: number, source: string, site: string, events: number, o: { windowOffset?: number; resend?: boolean } = {}): void {
    const list = this.log.get(p) ?? [];
    this.log.set(p, list);
    const sequence = o.resend ? this.seq.get(source)! : (this.seq.get(source) ?? 0) + 1;
    this.seq.set(source, sequence);
    const partial = emptyPartial();
    for (let i = 0; i < events; i++) addToPartial(partial, { user: hash64(`u${i % 7}`), value: 1 });
    const windowStartMs = T0 + (o.windowOffset ?? 0) * 60_000;
    const bytes = encodeEnvelope({
      version: 1,
      sourceId: source,
      sequence,
      watermarkMs: windowStartMs + sequence,
      createdAtMs: windowStartMs,
      rows: [{ windowStartMs, windowSizeMs: 60_000, site, event: 'e', dimensions: [], partial }],
    });
    list.push({ bytes, events, site, duplicate: o.resend === true });
  }

  appendGarbage(p: number): void {
    const list = this.log.get(p) ?? [];
    this.log.set(p, list);
    list.push({ bytes: new Uint8Array([0xff, 0x00, 0x13]), events: 0, site: '', duplicate: true });
  }

  /** Events per site that must end up counted: every envelope once, resends not again. */
  expected(): Map<string, number> {
    const m = new Map<string, number>();
    for (const list of this.log.values()) for (const e of list) if (!e.duplicate) m.set(e.site, (m.get(e.site) ?? 0) + e.events);
    return m;
  }

  countedSorted(): Array<[string, number]> {
    return [...this.counted].sort();
  }

  expectedSorted(): Array<[string, number]> {
    return [...this.expected()].sort();
  }

  /** One insert as ClickHouse takes it: a block under a token already used is dropped. */
  insert(key: string, table: string, bytes: Uint8Array): void {
    this.tokensPresented.push(key);
    const digest = decoder.decode(bytes);
    const seen = this.tokens.get(key);
    if (seen === undefined) {
      this.tokens.set(key, digest);
      if (table === 'agg_minute') for (const [site, n] of JSON.parse(digest) as Array<[string, number]>) this.counted.set(site, (this.counted.get(site) ?? 0) + n);
    } else if (seen !== digest) {
      // ClickHouse drops the block silently: exactly the loss of issue 9.
      this.violations.push({ kind: 'token_reused_for_different_contents', detail: key });
    }
  }

  checkpointRowsFor(p: number, epoch: number): Checkpoint[] {
    return [...this.checkpoints.values()].filter((c) => c.partition === p && c.epoch === epoch);
  }
}

/** A fake kafkajs consumer (commitOffsets) and admin (fetchOffsets, fetchTopicOffsets) over the world's coordinator. */
/** A process's liveness: a crash point kills it, and nothing of a dead process runs any more. */
export interface Life {
  alive(): boolean;
  kill(): void;
}

export function fakeKafkajs(world: World, topic: string, groupId: string, life: Life): { consumer: Pick<Consumer, 'commitOffsets'>; admin: Pick<Admin, 'fetchOffsets' | 'fetchTopicOffsets'> } {
  const consumer: Pick<Consumer, 'commitOffsets'> = {
    async commitOffsets(list) {
      world.commitsAttempted++;
      const behaviour = world.commitScript.shift() ?? 'ok';
      if (behaviour === 'silent') return;
      if (behaviour === 'throw') throw Object.assign(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092'), { name: 'KafkaJSNumberOfRetriesExceeded' });
      if (behaviour === 'fenced') {
        throw Object.assign(new Error('Specified group generation id is not valid'), { name: 'KafkaJSProtocolError', type: 'ILLEGAL_GENERATION', retriable: false });
      }
      for (const c of list) world.committed.set(c.partition, { offset: c.offset, metadata: c.metadata ?? null });
      await crashPoint(world, 'after_commit', life);
    },
  };
  const admin: Pick<Admin, 'fetchOffsets' | 'fetchTopicOffsets'> = {
    async fetchOffsets(q) {
      if (q.groupId !== groupId) throw new Error('unexpected group');
      return [{ topic, partitions: [...world.log.keys()].map((partition) => ({ partition, offset: world.committed.get(partition)?.offset ?? '-1', metadata: world.committed.get(partition)?.metadata ?? null })) }];
    },
    async fetchTopicOffsets() {
      return [...world.log].map(([partition, list]) => ({ partition, offset: String(list.length), high: String(list.length), low: String(world.logStarts.get(partition) ?? 0) }));
    },
  };
  return { consumer, admin };
}

const never = (): Promise<never> => new Promise(() => undefined);

async function crashPoint(world: World, at: CrashPoint, life: Life): Promise<void> {
  if (world.crash && world.crash.at === at && --world.crash.countdown === 0) {
    world.crash = undefined;
    // The process dies right here: the effect above is durable, nothing after it happens.
    life.kill();
  }
  if (!life.alive()) await never();
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A writer whose parts carry (site, events) as JSON; inserts are deduplicated by token like ClickHouse. */
function fakeWriter(world: World, life: Life): EpochPorts['writer'] {
  return {
    encode(emission: Emission): EncodedEmission {
      const parts: EncodedEmission['parts'] = [];
      if (emission.deltas.length > 0) parts.push({ table: 'agg_minute', rows: emission.deltas.length, bytes: encoder.encode(JSON.stringify(emission.deltas.map((d) => [d.site, d.partial.count]))) });
      if (emission.statuses.length > 0) parts.push({ table: 'window_status', rows: emission.statuses.length, bytes: encoder.encode(JSON.stringify(emission.statuses)) });
      if (emission.progressMs !== undefined) parts.push({ table: 'partition_progress', rows: 1, bytes: encoder.encode(String(emission.progressMs)) });
      return { parts };
    },
    async writeEncoded(encoded, token) {
      let rows = 0;
      for (const part of encoded.parts) {
        if (!life.alive()) await never();
        refuseIfDown(world);
        world.insert(`${token}:${part.table}`, part.table, part.bytes);
        rows += part.rows;
        await crashPoint(world, `after_table:${part.table}`, life);
      }
      return { rows };
    },
  };
}

function refuseIfDown(world: World): void {
  if (world.clickhousePermanent) throw world.clickhousePermanent;
  if (world.clickhouseRefusals > 0) {
    world.clickhouseRefusals--;
    throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
  }
}

function fakeCheckpoints(world: World, life: Life): CheckpointStore {
  return {
    async save(c) {
      if (!life.alive()) await never();
      refuseIfDown(world);
      world.checkpoints.set(c.checkpointId, structuredClone(c));
      await crashPoint(world, 'after_checkpoint', life);
    },
    async load(key) {
      refuseIfDown(world);
      const c = world.checkpoints.get(key.checkpointId);
      return c && c.partition === key.partition && c.epoch === key.epoch ? structuredClone(c) : undefined;
    },
    async summary(key) {
      const rows = [...world.checkpoints.values()].filter((c) => c.groupId === key.groupId && c.topic === key.topic && c.partition === key.partition);
      if (rows.length === 0) return undefined;
      return { maxEpoch: Math.max(...rows.map((r) => r.epoch)), maxNextOffset: String(Math.max(...rows.map((r) => Number(r.nextOffset)))) };
    },
  };
}

export const TOPIC = 'partials';
export const GROUP = 'agg';

/** One aggregator process over the world: its committer, its fetch positions, alive until it crashes. */
export class Incarnation {
  readonly committer: EpochCommitter;
  readonly fetchPos = new Map<number, number>();
  readonly seekPending = new Set<number>();
  readonly died: Promise<void>;
  readonly offsets: OffsetStore;
  private dead = false;
  private kill!: () => void;
  readonly logLines: Array<Record<string, unknown>> = [];

  constructor(
    readonly world: World,
    o: { offsets?: (inner: OffsetStore) => OffsetStore; hooks?: AggregatorHooks; options?: Partial<EpochCommitterOptions> } = {},
  ) {
    this.died = new Promise((resolve) => {
      this.kill = () => {
        this.dead = true;
        resolve();
      };
    });
    const life: Life = { alive: () => !this.dead, kill: () => this.kill() };
    const kafka = fakeKafkajs(world, TOPIC, GROUP, life);
    const inner = createKafkaOffsetStore({ ...kafka, groupId: GROUP, topic: TOPIC });
    this.offsets = o.offsets ? o.offsets(inner) : inner;
    const logger = silentLogger();
    const lines = this.logLines;
    const capture = (level: string) => (obj: unknown) => {
      if (typeof obj === 'object' && obj !== null) lines.push({ level, ...(obj as Record<string, unknown>) });
    };
    const log = Object.assign(Object.create(logger) as typeof logger, { info: capture('info'), warn: capture('warn'), error: capture('error'), debug: () => undefined });
    let ids = 0;
    this.committer = createEpochCommitter(
      {
        offsets: this.offsets,
        fetch: {
          seek: (partition, offset) => {
            this.fetchPos.set(partition, Number(offset));
            this.seekPending.add(partition);
          },
        },
        checkpoints: fakeCheckpoints(world, life),
        writer: fakeWriter(world, life),
        deadLetters: { send: async () => undefined },
        clock: {
          now: () => world.now,
          sleep: async (ms) => {
            world.now += ms;
            await new Promise((r) => setImmediate(r));
          },
        },
        newCheckpointId: () => `ck${++ids}-${Math.random().toString(36).slice(2, 8)}`,
      },
      { topic: TOPIC, groupId: GROUP, settings: { allowedLatenessMs: 0, correctionHorizonMs: 3_600_000, idleTimeoutMs: 60_000 }, emitIntervalMs: EMIT_MS, retryDelayMs: 10, logger: log, ...(o.hooks ? { hooks: o.hooks } : {}), ...o.options },
    );
  }

  get alive(): boolean {
    return !this.dead;
  }

  events(name: string): Array<Record<string, unknown>> {
    return this.logLines.filter((l) => l.event === name);
  }

  /** A group join: fetching resumes from the committed offsets, as kafkajs does. */
  join(partitions: number[]): void {
    for (const p of partitions) {
      this.fetchPos.delete(p);
      this.seekPending.delete(p);
    }
    this.committer.assigned(partitions);
  }

  /** Resolves with false if the process died before `p` settled. */
  async until<T>(p: Promise<T>): Promise<boolean> {
    return Promise.race([p.then(() => true), this.died.then(() => false)]);
  }

  /** One fetched batch of at most `max` records of partition `p` from the fetch position. */
  async batch(p: number, max = 2): Promise<boolean> {
    const list = this.world.log.get(p) ?? [];
    const from = this.fetchPos.get(p) ?? Number(this.world.committed.get(p)?.offset ?? 0);
    this.seekPending.delete(p);
    const messages = list.slice(from, from + max).map((e, i) => ({ offset: String(from + i), value: e.bytes }));
    if (messages.length === 0) return true;
    this.fetchPos.set(p, from);
    const ok = await this.until(
      this.committer.ingest({
        partition: p,
        messages,
        highWatermark: String(list.length),
        active: () => this.alive && !this.seekPending.has(p),
        resolveOffset: (offset) => {
          if (!this.seekPending.has(p)) this.fetchPos.set(p, Number(offset) + 1);
        },
        heartbeat: async () => undefined,
      }),
    );
    this.world.now += EMIT_MS;
    return ok;
  }

  /** Feeds every partition until its log is consumed and committed, or the process dies. */
  async run(partitions: number[], max = 2): Promise<boolean> {
    for (let round = 0; round < 500; round++) {
      for (const p of partitions) if (!(await this.batch(p, max))) return false;
      if (this.committer.failure()) return true;
      if (!(await this.until(this.committer.flushAll()))) return false;
      const done = partitions.every((p) => Number(this.world.committed.get(p)?.offset ?? 0) === (this.world.log.get(p)?.length ?? 0) && (this.fetchPos.get(p) ?? 0) >= (this.world.log.get(p)?.length ?? 0));
      if (done) {
        // Windows close on the timer: one more cut after time passed writes the final statuses.
        this.world.now += EMIT_MS;
        return this.until(this.committer.flushAll());
      }
    }
    throw new Error('the world did not settle in 500 rounds');
  }
}
