/** Shared fixtures of the edge unit tests: config, in-memory sinks of our own ports, a manual clock. */
import { gzipSync } from 'node:zlib';
import { decodeEnvelope, type PartialEnvelope } from '../../../shared/algebra/index.ts';
import { parseEdgeConfig, type EdgeConfig } from '../../../edge/config.ts';
import { createEdge, type Edge } from '../../../edge/edge.ts';
import type { RejectedRecord } from '../../../edge/ports.ts';
import type { EnvelopeMessage, PipelineSink } from '../../../shared/ports/pipeline-sink.ts';
import type { SaltProvider } from '../../../shared/salts.ts';
import type { Deduplicator } from '../../../edge/pipeline/dedup.ts';

export const T0 = Date.parse('2024-05-01T12:00:00.000Z');

export function testConfig(env: Record<string, string> = {}): EdgeConfig {
  const r = parseEdgeConfig({
    TRIBUTARY_WRITE_KEYS: 'wk_a:site-a,wk_b:site-b',
    PSEUDONYM_SALT: 'unit-test-salt-0123456789',
    // Tests flush explicitly; a commit timer would race them.
    COMMIT_DELAY_MS: '0',
    ...env,
  });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

/** The envelope half of a fake {@link PipelineSink}: records what it is sent; `failNext(n)` makes the next n sends throw. */
export class FakePartialSink implements Pick<PipelineSink, 'sendPartials'> {
  readonly messages: Array<{ key: string; value: Uint8Array }> = [];
  attempts = 0;
  private failures = 0;
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;

  failNext(n: number): void {
    this.failures = n;
  }

  /** Holds every send until `release()`. */
  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }

  release(): void {
    this.open?.();
    this.gate = undefined;
  }

  async sendPartials(msg: EnvelopeMessage): Promise<void> {
    this.attempts++;
    if (this.gate) await this.gate;
    if (this.failures > 0) {
      this.failures--;
      throw new Error('broker unavailable (fake)');
    }
    this.messages.push({ key: msg.key, value: msg.value.slice() });
  }

  envelopes(): PartialEnvelope[] {
    return this.messages.map((m) => {
      const d = decodeEnvelope(m.value);
      if (!d.ok) throw new Error(`undecodable envelope: ${d.error.message}`);
      return d.value;
    });
  }

  /** All bytes sent, as text (latin1 keeps every byte), for privacy searches. */
  text(): string {
    return this.messages.map((m) => Buffer.from(m.value).toString('latin1') + Buffer.from(m.value).toString('utf8')).join('\n');
  }
}

/** The rejected-records half of a fake {@link PipelineSink}. */
export class FakeRejectedSink implements Pick<PipelineSink, 'sendRejected'> {
  readonly records: RejectedRecord[] = [];
  private failures = 0;

  failNext(n: number): void {
    this.failures = n;
  }

  async sendRejected(records: readonly RejectedRecord[]): Promise<void> {
    if (this.failures > 0) {
      this.failures--;
      throw new Error('rejected topic unavailable (fake)');
    }
    // Serialize like the Kafka sink does, so tests see exactly the bytes that would leave.
    for (const r of records) this.records.push(JSON.parse(JSON.stringify(r)) as RejectedRecord);
  }

  text(): string {
    return this.records.map((r) => JSON.stringify(r)).join('\n');
  }
}

/** A fake {@link PipelineSink} made of the two recording halves (each looked up per call, so a test may replace a method). */
export function fakeSink(partials: FakePartialSink = new FakePartialSink(), rejected: FakeRejectedSink = new FakeRejectedSink()): PipelineSink {
  return { sendPartials: (envelope) => partials.sendPartials(envelope), sendRejected: (records) => rejected.sendRejected(records) };
}

export interface TestEdge extends Edge {
  partials: FakePartialSink;
  rejected: FakeRejectedSink;
  clock: { now: number };
  config: EdgeConfig;
}

export function makeEdge(env: Record<string, string> = {}, opts: { country?: (r: Request) => string | undefined; saltProvider?: SaltProvider; dedup?: Deduplicator } = {}): TestEdge {
  const config = testConfig(env);
  const partials = new FakePartialSink();
  const rejected = new FakeRejectedSink();
  const clock = { now: T0 };
  const edge = createEdge({
    config,
    sourceId: 'edge-test',
    sink: fakeSink(partials, rejected),
    now: () => clock.now,
    ...(opts.country ? { country: opts.country } : {}),
    ...(opts.saltProvider ? { saltProvider: opts.saltProvider } : {}),
    ...(opts.dedup ? { dedup: opts.dedup } : {}),
    flusher: { sleep: async () => undefined, random: () => 0.5, initialSequence: 1 },
  });
  return { ...edge, partials, rejected, clock, config };
}

export function basic(writeKey: string): string {
  return `Basic ${btoa(`${writeKey}:`)}`;
}

export interface PostOptions {
  writeKey?: string;
  headers?: Record<string, string>;
  gzip?: boolean;
}

export function postInit(body: unknown, o: PostOptions = {}): RequestInit {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...o.headers };
  if (o.writeKey !== undefined) headers.authorization = basic(o.writeKey);
  let payload: BodyInit;
  if (body instanceof Uint8Array) payload = body as Uint8Array<ArrayBuffer>;
  else payload = typeof body === 'string' ? body : JSON.stringify(body);
  if (o.gzip) {
    payload = new Uint8Array(gzipSync(typeof payload === 'string' ? payload : (payload as Uint8Array)));
    headers['content-encoding'] = 'gzip';
  }
  return { method: 'POST', headers, body: payload };
}

/**
 * Sends a request and drives flushes until it is answered: synchronous endpoints wait for the
 * group commit, so a test must flush once the request is waiting.
 */
export function send(edge: Edge, path: string, body: unknown, o: PostOptions = {}): Promise<Response> {
  return answered(edge, edge.app.request(path, postInit(body, o)));
}

/** Drives flushes until `response` settles: synchronous endpoints wait for the group commit. */
export async function answered(edge: Edge, response: Response | Promise<Response>): Promise<Response> {
  const pending = Promise.resolve(response);
  let settled = false;
  void pending.finally(() => (settled = true));
  while (!settled) {
    if (edge.flusher.stats().waitingRequests > 0) await edge.flusher.flushNow();
    else await new Promise((r) => setTimeout(r, 0));
  }
  return pending;
}

export async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

/** Rows of all envelopes sent so far, flattened. */
export function sentRows(sink: FakePartialSink): PartialEnvelope['rows'] {
  return sink.envelopes().flatMap((e) => e.rows);
}

let messageCounter = 0;

/** A valid track event with a fresh messageId. */
export function track(over: Record<string, unknown> = {}): Record<string, unknown> {
  messageCounter++;
  return { type: 'track', event: 'signup', userId: 'u1', messageId: `m-${messageCounter}`, timestamp: new Date(T0).toISOString(), ...over };
}
