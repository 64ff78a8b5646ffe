/**
 * Control characters in what is stored (dimension values, event names) are replaced at the edge;
 * markup is kept as sent (escaping it is the display's job, docs/EDGE.md "What is scrubbed").
 */
import { describe, expect, it } from 'vitest';
import { storedText } from '../../../edge/pipeline/dimensions.ts';
import { makeEdge, send, sentRows, track } from './helpers.ts';

describe('stored text', () => {
  it('replaces C0, DEL, C1 and bidirectional overrides, and keeps everything else', () => {
    expect(storedText('/a\u0000b\u001b[2J\u007f\u0085\u202e\u2066c')).toBe('/a\ufffdb\ufffd[2J\ufffd\ufffd\ufffd\ufffdc');
    expect(storedText('/<script>alert("x")</script>?q=é€😀')).toBe('/<script>alert("x")</script>?q=é€😀');
  });

  it('reaches the envelope without control characters, in the path dimension and the event name', async () => {
    const edge = makeEdge({ DIMENSIONS: 'path' });
    const res = await send(edge, '/v1/batch', { batch: [track({ event: 'sign\u0000up\u001b[2J', properties: { path: '/a\u0007b/<b>\u202e' } })] }, { writeKey: 'wk_a' });
    expect(res.status).toBe(200);
    const [row] = sentRows(edge.partials);
    expect(row?.event).toBe('sign\ufffdup\ufffd[2J');
    expect(row?.dimensions).toEqual([['path', '/a\ufffdb/<b>\ufffd']]);
  });
});
