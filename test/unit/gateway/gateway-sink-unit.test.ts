import { describe, expect, it } from 'vitest';
import { RecordingPipelineSink } from '../../support/fake-pipeline-sink.ts';
import { emptyPartial, encodeEnvelope } from '../../../shared/algebra/index.ts';
import { createGatewayApp } from '../../../core/gateway/app.ts';
import { silentLogger } from '../../../core/log.ts';
import { createGatewayClient, createGatewaySink, gatewayFailure, GatewayError } from '../../../edge/gateway-client.ts';
import type { RejectedRecord } from '../../../schemas/rejected-record.ts';
import { mayRetryNow, type EnvelopeMessage } from '../../../shared/ports/pipeline-sink.ts';

// The PipelineSink contract through the gateway (shared/ports/pipeline-sink.ts): the edge's
// gateway sink (Deno flusher, Workers shard alarm) over the real gateway app, whose own sink is
// a fake of the same port standing for Kafka. A send resolves only once that sink resolved;
// a failure behind the gateway rejects with the gateway's answer, retriable.
const SECRET = 'unit-gateway-sink-secret-0123456789abcdef';
const T0 = Date.parse('2026-11-01T12:00:00Z');

function setup() {
  const kafka = new RecordingPipelineSink();
  const app = createGatewayApp({ keys: new Map([['edge-a', SECRET]]), producer: kafka, logger: silentLogger(), now: () => T0 });
  const requests: string[] = [];
  const client = createGatewayClient({
    url: 'http://gateway.test',
    edgeId: 'edge-a',
    secret: SECRET,
    now: () => T0,
    fetch: (request) => {
      requests.push(new URL(request.url).pathname);
      return Promise.resolve(app.fetch(request));
    },
  });
  return { kafka, sink: createGatewaySink(client), requests };
}

function envelope(sequence: number): EnvelopeMessage {
  const partial = emptyPartial();
  partial.count = 3;
  const value = encodeEnvelope({ version: 1, sourceId: 'do-edge-a-0', sequence, watermarkMs: T0 - 1000, createdAtMs: T0, rows: [{ windowStartMs: T0, windowSizeMs: 60_000, site: 'demo', event: 'signup', dimensions: [], partial }] });
  return { key: 'do-edge-a-0', value };
}

const record: RejectedRecord = { site: 'demo', received_at: '2026-11-01T12:00:00.000Z', index: 0, message_id: null, errors: [{ path: '/event', message: 'is required' }], event: { type: 'track' } };

async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setTimeout(r, 20));
  return done;
}

describe('PipelineSink through the gateway', () => {
  it('resolves a send only once the sink behind the gateway resolved', async () => {
    const { kafka, sink } = setup();
    let open!: () => void;
    kafka.gate = new Promise((r) => (open = r));
    const sending = sink.sendPartials(envelope(10));
    const rejecting = sink.sendRejected([record]);
    expect(await settled(sending)).toBe(false);
    expect(await settled(rejecting)).toBe(false);
    open();
    await sending;
    await rejecting;
    expect(kafka.partials.map((m) => m.key)).toEqual(['do-edge-a-0']);
    expect(kafka.rejected).toEqual([record]);
  });

  it('rejects with the gateway\'s answer when the sink behind it fails: retriable, with its Retry-After', async () => {
    const { kafka, sink } = setup();
    kafka.failures = 2;
    const error = await sink.sendPartials(envelope(11)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(GatewayError);
    expect(mayRetryNow(error)).toBe(true);
    expect(gatewayFailure(error)).toMatchObject({ ok: false, status: 503, retryAfterS: 5 });
    await expect(sink.sendRejected([record])).rejects.toBeInstanceOf(GatewayError);
    // The same envelope again, once the sink is back: produced once.
    await sink.sendPartials(envelope(11));
    expect(kafka.partials).toHaveLength(1);
  });

  it('sends nothing for an empty batch of rejected records', async () => {
    const { sink, requests } = setup();
    await sink.sendRejected([]);
    expect(requests).toEqual([]);
  });
});
