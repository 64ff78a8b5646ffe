import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEnvelope, emptyPartial, encodeEnvelope, addToPartial, hash64, sourceOfSubSource, type PartialEnvelope } from '../../shared/algebra/index.ts';
import { startGateway, type RunningGateway } from '../../core/gateway/server.ts';
import { silentLogger } from '../../core/log.ts';
import { signGatewayRequest } from '../../schemas/gateway-signature.ts';
import { testKafkaBrokers, uniqueName, waitFor } from './setup/kafka-test-env.ts';

// The gateway against the real broker: signed envelope in, the same envelope out of Kafka.
const SECRET = 'integration-gateway-secret-0123456789abcdef';
const kafka = new Kafka({ clientId: 'gateway-kafka-test', brokers: testKafkaBrokers(), logLevel: logLevel.WARN });
const topics = { partials: uniqueName('gw-partials'), rejected: uniqueName('gw-rejected') };
const PARTITIONS = 2;
const received: KafkaMessage[] = [];
const consumer = kafka.consumer({ groupId: uniqueName('gw-test-group'), maxWaitTimeInMs: 100 });
let gateway: RunningGateway;

beforeAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [topics.partials, topics.rejected].map((topic) => ({ topic, numPartitions: PARTITIONS })), waitForLeaders: true });
  await admin.disconnect();
  gateway = await startGateway({ brokers: testKafkaBrokers(), keys: new Map([['edge-it', SECRET]]), port: 0, hostname: '127.0.0.1', topics, logger: silentLogger() });
  await consumer.connect();
  await consumer.subscribe({ topic: topics.partials, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void received.push(message) });
});

afterAll(async () => {
  await consumer.disconnect();
  await gateway?.close();
});

// Source ids of edge `edge-it` as a Workers shard names them (the gateway accepts no other, ADR 0015).
let shard = Math.floor(Math.random() * 9000) * 100;
const shardSource = (): string => `do-edge-it-${++shard}`;

function envelope(sourceId: string, sequence: number): PartialEnvelope {
  const partial = emptyPartial();
  for (let i = 0; i < 20; i++) addToPartial(partial, { user: hash64(`u${i % 5}`), value: i });
  return { version: 1, sourceId, sequence, watermarkMs: 1_800_000_000_000, createdAtMs: 1_800_000_001_000, rows: [{ windowStartMs: 1_799_999_940_000, windowSizeMs: 60_000, site: 'it', event: 'signup', dimensions: [['path', '/']], partial }] };
}

async function postSigned(body: Uint8Array, o: { secret?: string; nonce?: string } = {}): Promise<Response> {
  const headers = await signGatewayRequest({ kind: 'partials', edgeId: 'edge-it', secret: o.secret ?? SECRET, body, timestampMs: Date.now(), ...(o.nonce ? { nonce: o.nonce } : {}) });
  return fetch(`${gateway.url}/v1/partials`, { method: 'POST', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: body as Uint8Array<ArrayBuffer> });
}

/**
 * The envelopes of `source` as produced: the gateway splits each into one part per partition
 * (cell routing, ADR 0008), keyed `<source>#<partition>`; parts of one sequence are joined back.
 * Only complete envelopes (every partition's part arrived) are returned, in sequence order.
 */
const decoded = (source: string): PartialEnvelope[] => {
  const parts = new Map<number, PartialEnvelope[]>();
  for (const m of received) {
    const key = m.key?.toString() ?? '';
    if (sourceOfSubSource(key) !== source || key === source) continue;
    const d = decodeEnvelope(new Uint8Array(m.value ?? Buffer.alloc(0)));
    if (!d.ok) throw new Error(d.error.message);
    expect(d.value.sourceId).toBe(key);
    parts.set(d.value.sequence, [...(parts.get(d.value.sequence) ?? []), d.value]);
  }
  return [...parts.entries()]
    .filter(([, p]) => p.length === PARTITIONS)
    .sort(([a], [b]) => a - b)
    .map(([, p]) => ({ ...(p[0] as PartialEnvelope), sourceId: source, rows: p.flatMap((x) => x.rows) }));
};

describe('gateway -> Kafka', () => {
  it('produces a signed envelope split by cell into one part per partition, joined back unchanged', async () => {
    const source = shardSource();
    const sent = envelope(source, 41);
    const res = await postSigned(encodeEnvelope(sent));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, duplicate: false });
    await waitFor(() => decoded(source).length === 1, 'the envelope in Kafka');
    expect(decoded(source)[0]).toEqual(sent);
  });

  it('refuses a bad signature and a replayed nonce with 401, producing nothing', async () => {
    const source = shardSource();
    const body = encodeEnvelope(envelope(source, 1));
    const bad = await postSigned(body, { secret: 'not-the-secret-0123456789abcdef0123456789' });
    expect(bad.status).toBe(401);
    expect(await bad.json()).toMatchObject({ error: { code: 'unauthorized' } });
    const nonce = uniqueName('nonce-0123456789');
    expect((await postSigned(body, { nonce })).status).toBe(200);
    const replay = await postSigned(body, { nonce });
    expect(replay.status).toBe(401);
    expect(await replay.json()).toMatchObject({ error: { code: 'replayed_nonce' } });
    await waitFor(() => decoded(source).length === 1, 'the one accepted envelope');
  });

  it('produces a duplicate (source, sequence) once', async () => {
    const source = shardSource();
    const five = encodeEnvelope(envelope(source, 5));
    expect(await (await postSigned(five)).json()).toEqual({ ok: true, duplicate: false });
    expect(await (await postSigned(five)).json()).toEqual({ ok: true, duplicate: true });
    expect(await (await postSigned(encodeEnvelope(envelope(source, 6)))).json()).toEqual({ ok: true, duplicate: false });
    // Wait for the later sequence: same sub-source keys, same partitions, so 5 is already there if it is.
    await waitFor(() => decoded(source).some((e) => e.sequence === 6), 'sequence 6 in Kafka');
    expect(decoded(source).map((e) => e.sequence)).toEqual([5, 6]);
  });
});
