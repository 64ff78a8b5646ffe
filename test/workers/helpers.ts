/** Shared fixtures of the workerd tests: the Worker entry, shard stubs, a fake gateway on `fetch`. */
import { runDurableObjectAlarm } from 'cloudflare:test';
import { env, exports } from 'cloudflare:workers';
import { vi } from 'vitest';
import { decodeEnvelope, type PartialEnvelope } from '../../shared/algebra/index.ts';
import type { EdgeShard } from '../../edge/worker/index.ts';
import type { ShardStats } from '../../edge/worker/shard-protocol.ts';
import { verifyGatewayRequest, type GatewayKind } from '../../schemas/gateway-signature.ts';

export const EDGE_ID = env.EDGE_ID;
export const SIGNING_KEY = env.GATEWAY_SIGNING_KEY;
export const SHARDS = Number(env.DO_SHARDS);

/** The Worker's default export, called as Cloudflare would (real env and ctx). */
export function worker(): Fetcher {
  return (exports as unknown as { default: Fetcher }).default;
}

export function post(path: string, body: unknown, o: { writeKey?: string; headers?: Record<string, string> } = {}): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...o.headers };
  if (o.writeKey !== undefined) headers.authorization = `Basic ${btoa(`${o.writeKey}:`)}`;
  return worker().fetch(`http://edge.test${path}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

export function shardStub(index: number): DurableObjectStub<EdgeShard> {
  return env.EDGE_SHARDS.getByName(`${EDGE_ID}-${index}`);
}

export async function allStats(): Promise<ShardStats[]> {
  return Promise.all(Array.from({ length: SHARDS }, (_, i) => shardStub(i).stats()));
}

/** What the fake gateway received: verified signature, decoded envelope. */
export interface GatewayCall {
  kind: GatewayKind;
  edgeId: string;
  nonce: string;
  bytes: Uint8Array;
  envelope: PartialEnvelope | undefined;
  rejected: unknown[] | undefined;
  answered: number;
}

/**
 * Replaces `fetch` (the Durable Objects run in the test's isolate) with a gateway that verifies
 * each signature like core/gateway does and answers with `status()`.
 */
export function fakeGateway(status: () => number = () => 200): { calls: GatewayCall[]; restore(): void } {
  const calls: GatewayCall[] = [];
  const spy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (url.origin !== 'http://gateway.test') throw new Error(`unexpected fetch to ${request.url}`);
    const kind: GatewayKind = url.pathname === '/v1/rejected' ? 'rejected' : 'partials';
    const bytes = new Uint8Array(await request.arrayBuffer());
    const verified = await verifyGatewayRequest({ kind, headers: request.headers, body: bytes, keys: new Map([[EDGE_ID, SIGNING_KEY]]), nowMs: Date.now() });
    if (!verified.ok) return Response.json({ error: { code: verified.code } }, { status: 401 });
    const answered = status();
    const decoded = kind === 'partials' ? decodeEnvelope(bytes) : undefined;
    calls.push({
      kind,
      edgeId: verified.edgeId,
      nonce: verified.nonce,
      bytes,
      envelope: decoded?.ok ? decoded.value : undefined,
      rejected: kind === 'rejected' ? (JSON.parse(new TextDecoder().decode(bytes)) as unknown[]) : undefined,
      answered,
    });
    return new Response(answered === 200 ? '{"ok":true}' : '{"error":{"code":"kafka_unavailable"}}', { status: answered, headers: answered === 503 ? { 'retry-after': '2' } : {} });
  });
  return { calls, restore: () => spy.mockRestore() };
}

/** Runs every shard's alarm against an accepting gateway until nothing is pending: a clean slate. */
export async function drainShards(): Promise<void> {
  const gateway = fakeGateway();
  try {
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < SHARDS; i++) await runDurableObjectAlarm(shardStub(i));
      const stats = await allStats();
      if (stats.every((s) => s.pendingEvents === 0 && s.outboxEnvelopes === 0 && s.rejectedRecords === 0)) return;
    }
    throw new Error('shards did not drain');
  } finally {
    gateway.restore();
  }
}

let counter = 0;

/** A valid track event with a fresh messageId. */
export function track(over: Record<string, unknown> = {}): Record<string, unknown> {
  counter++;
  return { type: 'track', event: 'signup', userId: `u-${counter % 7}`, messageId: `wk-${Date.now()}-${counter}`, timestamp: new Date().toISOString(), properties: { value: counter % 10 }, ...over };
}
