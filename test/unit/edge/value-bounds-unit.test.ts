import { describe, expect, it } from 'vitest';
import { json, makeEdge, send, sentRows, track } from './helpers.ts';

// One public write key must not be able to spoil a site's sum, average and percentiles forever:
// two events of 1.7976931348623157e308 summed to Infinity before measured values were bounded.
describe('measured values are bounded', () => {
  it('rejects a value beyond ±1e15 with a reason and keeps the rest of the batch', async () => {
    const edge = makeEdge();
    const huge = 1.7976931348623157e308;
    const batch = [
      track({ userId: 'u1', properties: { value: huge } }),
      track({ userId: 'u2', properties: { value: huge } }),
      track({ userId: 'u3', properties: { revenue: -2e15 } }),
      track({ userId: 'u4', properties: { value: 1e15 } }),
      track({ userId: 'u5', properties: { value: 'not a number' } }),
    ];
    const res = await send(edge, '/v1/batch', { batch }, { writeKey: 'wk_a' });
    expect(res.status).toBe(200);
    const body = (await json(res)) as { accepted: number; rejected: Array<{ index: number; errors: Array<{ path: string; message: string }> }> };
    expect(body.accepted).toBe(2);
    expect(body.rejected.map((r) => [r.index, r.errors[0]?.path, r.errors[0]?.message])).toEqual([
      [0, '/properties/value', 'must be <= 1000000000000000'],
      [1, '/properties/value', 'must be <= 1000000000000000'],
      [2, '/properties/revenue', 'must be >= -1000000000000000'],
    ]);
    const rows = sentRows(edge.partials);
    const sum = rows.reduce((s, r) => s + r.partial.sum, 0);
    expect(Number.isFinite(sum)).toBe(true);
    expect(sum).toBe(1e15);
  });
});
