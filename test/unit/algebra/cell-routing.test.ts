import { describe, expect, it } from 'vitest';
import { addToPartial, cellPartition, decodeEnvelope, emptyPartial, encodeEnvelope, hash64, sourceOfSubSource, splitEnvelopeByCell, type PartialEnvelope, type PartialRow } from '../../../shared/algebra/index.ts';
import { rng } from '../../support/prng.ts';

function row(site: string, event: string, path: string, windowStartMs: number, user: string): PartialRow {
  const partial = emptyPartial();
  addToPartial(partial, { user: hash64(user), value: 1 });
  return { windowStartMs, windowSizeMs: 60_000, site, event, dimensions: [['country', 'DE'], ['path', path]], partial };
}

function envelope(sourceId: string, rows: PartialRow[]): PartialEnvelope {
  return { version: 1, sourceId, sequence: 42, watermarkMs: 1_000, createdAtMs: 2_000, rows };
}

const keyOf = (r: PartialRow): string => `${r.windowStartMs}|${r.site}|${r.event}|${JSON.stringify(r.dimensions)}`;

describe('splitEnvelopeByCell', () => {
  const rand = rng(11);
  const rows = Array.from({ length: 400 }, (_, i) => row(`s${i % 3}`, i % 2 ? 'view' : 'buy', `/p/${Math.floor(rand() * 50)}`, 60_000 * (i % 4), `u${i}`));

  it('puts every row in exactly one part, in its cell partition, with sub-source ids and the whole envelope sequence and watermark', () => {
    const parts = splitEnvelopeByCell(envelope('edge-a', rows), 6);
    expect(parts).toHaveLength(6);
    expect(parts.map((p) => p.sourceId)).toEqual(['edge-a#0', 'edge-a#1', 'edge-a#2', 'edge-a#3', 'edge-a#4', 'edge-a#5']);
    for (const [k, part] of parts.entries()) {
      expect(part).toMatchObject({ version: 1, sequence: 42, watermarkMs: 1_000, createdAtMs: 2_000 });
      for (const r of part.rows) expect(cellPartition(r, 6)).toBe(k);
    }
    expect(parts.flatMap((p) => p.rows).map(keyOf).sort()).toEqual(rows.map(keyOf).sort());
    // The hash spreads cells: no partition is left with nothing for this many distinct cells.
    expect(parts.every((p) => p.rows.length > 0)).toBe(true);
  });

  it('sends a cell to the same partition from every edge and for every window, so one aggregator merges it', () => {
    const a = row('s', 'view', '/x', 0, 'u1');
    const b = row('s', 'view', '/x', 3_600_000, 'u2');
    const other = row('s', 'view', '/y', 0, 'u1');
    expect(cellPartition(a, 8)).toBe(cellPartition(b, 8));
    const fromA = splitEnvelopeByCell(envelope('edge-a', [a, other]), 8);
    const fromB = splitEnvelopeByCell(envelope('edge-b', [b]), 8);
    const where = (parts: PartialEnvelope[], r: PartialRow): number => parts.findIndex((p) => p.rows.includes(r));
    expect(where(fromA, a)).toBe(where(fromB, b));
  });

  it('keeps empty parts, so every partition sees the source watermark advance', () => {
    const parts = splitEnvelopeByCell(envelope('edge-a', []), 4);
    expect(parts.map((p) => [p.sourceId, p.rows.length, p.watermarkMs])).toEqual([['edge-a#0', 0, 1_000], ['edge-a#1', 0, 1_000], ['edge-a#2', 0, 1_000], ['edge-a#3', 0, 1_000]]);
  });

  it('splits a resent envelope into the same bytes, so the aggregator drops the resend by sequence', () => {
    const bytes = encodeEnvelope(envelope('edge-a', rows));
    const split = (): string[] => {
      const decoded = decodeEnvelope(bytes);
      if (!decoded.ok) throw new Error(decoded.error.message);
      return splitEnvelopeByCell(decoded.value, 5).map((p) => Buffer.from(encodeEnvelope(p)).toString('base64'));
    };
    expect(split()).toEqual(split());
  });

  it('refuses a partition count that is not a positive integer', () => {
    expect(() => splitEnvelopeByCell(envelope('e', rows), 0)).toThrow(/positive integer/);
    expect(() => splitEnvelopeByCell(envelope('e', rows), 1.5)).toThrow(/positive integer/);
  });
});

describe('sourceOfSubSource', () => {
  it('strips the partition shard and leaves other ids alone', () => {
    expect(sourceOfSubSource('edge-fra-1#3')).toBe('edge-fra-1');
    expect(sourceOfSubSource('edge-fra-1#12')).toBe('edge-fra-1');
    expect(sourceOfSubSource('edge-fra-1')).toBe('edge-fra-1');
    expect(sourceOfSubSource('odd#name#2')).toBe('odd#name');
    expect(sourceOfSubSource('odd#name')).toBe('odd#name');
    expect(sourceOfSubSource('#1')).toBe('#1');
  });
});
