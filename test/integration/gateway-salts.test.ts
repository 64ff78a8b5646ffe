import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEnvelope, hllEstimate, hllMerge, hllToRegisters, sourceOfSubSource, type PartialRow } from '../../shared/algebra/index.ts';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { startGateway, type RunningGateway } from '../../core/gateway/server.ts';
import { silentLogger } from '../../core/log.ts';
import { createClickHouseSaltProvider } from '../../core/salts/clickhouse-salt-provider.ts';
import { parseEdgeConfig, type EdgeConfig } from '../../edge/config.ts';
import { createEdge, type Edge } from '../../edge/edge.ts';
import { createGatewayClient, createGatewaySink } from '../../edge/gateway-client.ts';
import { createGatewaySaltProvider } from '../../edge/gateway-salt-provider.ts';
import { startNodeEdge, type RunningNodeEdge } from '../../edge/node/server.ts';
import type { SaltLookup } from '../../shared/salts.ts';
import { openTestClickHouse } from './helpers/aggregator-harness.ts';
import { testKafkaBrokers, uniqueName, waitFor } from './setup/kafka-test-env.ts';
import { tempDedupDir } from './setup/dedup-dir.ts';
import { denoSourceId } from '../../schemas/gateway-sources.ts';

// The salts a Workers or Deno edge gets from `tributary gateway` are the central store's: the
// same bytes the Node edge's ClickHouse provider reads, so both edges give one user one pseudonym.
// Real chdb store, real gateway over HTTP, real Kafka broker for both edges' partials.
const DAY = 86_400_000;
const SECRET = 'integration-salts-secret-0123456789abcdef';
const EDGE_ID = 'workers-it';
// A source id of the form the gateway accepts from this edge's key (schemas/gateway-sources.ts).
const REMOTE_SOURCE = denoSourceId(EDGE_ID, '0000000a');
const topics = { partials: uniqueName('salt-partials'), rejected: uniqueName('salt-rejected') };
const kafka = new Kafka({ clientId: uniqueName('salts-test'), brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING });
const consumer = kafka.consumer({ groupId: uniqueName('salts-test-group'), maxWaitTimeInMs: 100 });
const rows: Array<{ sourceId: string; row: PartialRow }> = [];

let ch: ClickHouse;
let gateway: RunningGateway;
let nodeEdge: RunningNodeEdge;
let remoteEdge: Edge;
let remoteTimer: ReturnType<typeof setInterval>;
let config: EdgeConfig;

const hex = (r: SaltLookup): string => (r.kind === 'ok' ? Buffer.from(r.salt).toString('hex') : r.kind);
const gatewaySalts = (retentionEpochs = 2) => createGatewaySaltProvider({ gateway: { url: gateway.url, edgeId: EDGE_ID, secret: SECRET }, epochMs: DAY, retentionEpochs });

beforeAll(async () => {
  ch = await openTestClickHouse('trib-gw-salts');
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [topics.partials, topics.rejected].map((topic) => ({ topic, numPartitions: 1 })), waitForLeaders: true });
  await admin.disconnect();
  // The gateway's provider is its own instance (as in its own process): it shares only the store.
  const gatewayStore = createClickHouseSaltProvider({ client: ch.client, epochMs: DAY, retentionEpochs: 2, now: Date.now });
  gateway = await startGateway({ brokers: testKafkaBrokers(), keys: new Map([[EDGE_ID, SECRET]]), port: 0, hostname: '127.0.0.1', topics, logger: silentLogger(), salts: gatewayStore });

  const parsed = parseEdgeConfig({ TRIBUTARY_WRITE_KEYS: 'wk_it:it', FLUSH_INTERVAL_MS: '50', HEARTBEAT_MS: '600000', DIMENSIONS: 'path', DEDUP_DIR: tempDedupDir() }, { pseudonymSaltRequired: false });
  if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
  config = parsed.config;
  // The Node edge: ClickHouse salts, straight to Kafka.
  const nodeStore = createClickHouseSaltProvider({ client: ch.client, epochMs: DAY, retentionEpochs: 2, now: Date.now });
  nodeEdge = await startNodeEdge({ config, brokers: testKafkaBrokers(), port: 0, hostname: '127.0.0.1', sourceId: 'node-it', topics, saltProvider: nodeStore, log: () => undefined });
  // The runtime-neutral edge as Workers and Deno assemble it: gateway salts, gateway sink.
  remoteEdge = createEdge({ config, sourceId: REMOTE_SOURCE, sink: createGatewaySink(createGatewayClient({ url: gateway.url, edgeId: EDGE_ID, secret: SECRET })), saltProvider: gatewaySalts() });
  remoteTimer = setInterval(() => void remoteEdge.flusher.tick().catch(() => undefined), 50);

  await consumer.connect();
  await consumer.subscribe({ topic: topics.partials, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const d = decodeEnvelope(new Uint8Array(message.value ?? Buffer.alloc(0)));
      if (d.ok) for (const row of d.value.rows) rows.push({ sourceId: sourceOfSubSource(d.value.sourceId), row });
    },
  });
});

afterAll(async () => {
  clearInterval(remoteTimer);
  await consumer?.disconnect();
  await nodeEdge?.close();
  await gateway?.close();
  await ch?.close();
});

describe('central salts served by the gateway', () => {
  it('serves, over signed HTTP, exactly the salt the Node ClickHouse provider uses for the epoch', async () => {
    const epoch = Math.floor(Date.now() / DAY);
    const node = createClickHouseSaltProvider({ client: ch.client, epochMs: DAY, retentionEpochs: 2, now: Date.now });
    for (const e of [epoch, epoch + 1, epoch - 1]) {
      const [fromGateway, fromStore] = await Promise.all([gatewaySalts().saltFor(e), node.saltFor(e)]);
      expect(fromGateway.kind).toBe('ok');
      expect(hex(fromGateway)).toMatch(/^[0-9a-f]{64}$/);
      expect(hex(fromGateway)).toBe(hex(fromStore));
      expect(fromGateway.kind === 'ok' && fromStore.kind === 'ok' && fromGateway.usableUntilMs === fromStore.usableUntilMs).toBe(true);
    }
    // Epochs differ; and an epoch past the gateway's retention is 410 -> expired (the edge's
    // own retention is set wider here so that the gateway is the one refusing).
    expect(hex(await gatewaySalts().saltFor(epoch))).not.toBe(hex(await gatewaySalts().saltFor(epoch + 1)));
    expect(await gatewaySalts(30).saltFor(epoch - 3)).toEqual({ kind: 'expired' });
  });

  it('gives the same user the same pseudonym on a Node edge and on a gateway-salted edge', async () => {
    const send = async (target: 'node' | 'remote', userId: string, n: number): Promise<number> => {
      const init = {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from('wk_it:').toString('base64')}` },
        body: JSON.stringify({ event: 'salt-parity', userId, messageId: uniqueName(`m-${target}-${n}`), context: { page: { path: `/${userId}` } } }),
      };
      const res = target === 'node' ? await fetch(`${nodeEdge.url}/v1/track`, init) : await remoteEdge.app.request('/v1/track', init);
      return res.status;
    };
    for (const [target, user] of [['node', 'same-person'], ['remote', 'same-person'], ['node', 'other-person']] as const) {
      expect(await send(target, user, rows.length)).toBe(200);
    }
    const of = (sourceId: string, path: string): PartialRow | undefined => rows.find((r) => r.sourceId === sourceId && r.row.event === 'salt-parity' && r.row.dimensions.some(([k, v]) => k === 'path' && v === path))?.row;
    await waitFor(() => of('node-it', '/same-person') !== undefined && of(REMOTE_SOURCE, '/same-person') !== undefined && of('node-it', '/other-person') !== undefined, 'the three rows in Kafka');

    const nodeUser = (of('node-it', '/same-person') as PartialRow).partial.users;
    const remoteUser = (of(REMOTE_SOURCE, '/same-person') as PartialRow).partial.users;
    const otherUser = (of('node-it', '/other-person') as PartialRow).partial.users;
    expect(hllToRegisters(remoteUser)).toEqual(hllToRegisters(nodeUser));
    expect(hllToRegisters(otherUser)).not.toEqual(hllToRegisters(nodeUser));
    // Merged across the two edges, the person counts once.
    expect(Math.round(hllEstimate(hllMerge(nodeUser, remoteUser)))).toBe(1);
  });
});
