import { describe, expect, it } from 'vitest';
import { GATEWAY_HEADERS, signGatewayRequest, verifyGatewayRequest } from '../../../schemas/gateway-signature.ts';

const keys = new Map([['edge-1', 'signature-secret-0123456789abcdef0123']]);
const body = new Uint8Array([1, 2, 3, 4]);

describe('gateway signature (schemas/gateway-signature.ts)', () => {
  it('round-trips, and each signature has a fresh nonce', async () => {
    const a = await signGatewayRequest({ kind: 'partials', edgeId: 'edge-1', secret: keys.get('edge-1')!, body, timestampMs: 1000 });
    const b = await signGatewayRequest({ kind: 'partials', edgeId: 'edge-1', secret: keys.get('edge-1')!, body, timestampMs: 1000 });
    expect(a[GATEWAY_HEADERS.nonce]).not.toBe(b[GATEWAY_HEADERS.nonce]);
    expect(a[GATEWAY_HEADERS.signature]).toMatch(/^v1=[0-9a-f]{64}$/);
    const v = await verifyGatewayRequest({ kind: 'partials', headers: new Headers(a), body, keys, nowMs: 2000 });
    expect(v).toEqual({ ok: true, edgeId: 'edge-1', timestampMs: 1000, nonce: a[GATEWAY_HEADERS.nonce] });
  });

  it('binds the timestamp, the nonce and the edge id into the signature', async () => {
    const h = await signGatewayRequest({ kind: 'partials', edgeId: 'edge-1', secret: keys.get('edge-1')!, body, timestampMs: 1000 });
    for (const [name, value] of [[GATEWAY_HEADERS.timestamp, '1001'], [GATEWAY_HEADERS.nonce, 'another-nonce-0123456789']] as const) {
      const v = await verifyGatewayRequest({ kind: 'partials', headers: new Headers({ ...h, [name]: value }), body, keys, nowMs: 1000 });
      expect(v).toMatchObject({ ok: false, code: 'bad_signature' });
    }
  });

  it('refuses malformed signatures without throwing', async () => {
    const h = await signGatewayRequest({ kind: 'partials', edgeId: 'edge-1', secret: keys.get('edge-1')!, body, timestampMs: 1000 });
    for (const sig of ['v1=zz', 'v2=' + 'a'.repeat(64), 'v1=' + 'a'.repeat(62)]) {
      const v = await verifyGatewayRequest({ kind: 'partials', headers: new Headers({ ...h, [GATEWAY_HEADERS.signature]: sig }), body, keys, nowMs: 1000 });
      expect(v).toMatchObject({ ok: false, code: 'bad_signature' });
    }
  });
});
