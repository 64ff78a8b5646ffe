import { describe, expect, it } from 'vitest';
import {
  addToPartial,
  decodeEnvelope,
  emptyPartial,
  encodeEnvelope,
  hash64,
  hllEstimate,
  type PartialEnvelope,
} from '../../shared/algebra/index.ts';

// shared/algebra must run unchanged inside workerd: no node:* imports, no run-time codegen.
describe('shared/algebra inside workerd', () => {
  it('aggregates, encodes and decodes an envelope', () => {
    const partial = emptyPartial();
    for (let i = 0; i < 500; i++) addToPartial(partial, { user: hash64(`user-${i % 100}`), value: i });
    const envelope: PartialEnvelope = {
      version: 1,
      sourceId: 'edge-workerd',
      sequence: 7,
      watermarkMs: 1_700_000_000_000,
      createdAtMs: 1_700_000_001_000,
      rows: [{ windowStartMs: 1_700_000_000_000, windowSizeMs: 60_000, site: 's', event: 'e', dimensions: [['country', 'DE']], partial }],
    };
    const decoded = decodeEnvelope(encodeEnvelope(envelope));
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    const row = decoded.value.rows[0];
    expect(row?.partial.count).toBe(500);
    expect(row?.partial.sum).toBe((499 * 500) / 2);
    expect(Math.abs(hllEstimate(row!.partial.users) - 100)).toBeLessThanOrEqual(2);
    expect(navigator.userAgent).toBe('Cloudflare-Workers');
  });
});
