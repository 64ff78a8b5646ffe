import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, parseJsonBody } from '../../../edge/body/parse-json.ts';
import { scanJson } from '../../../edge/body/scan-json.ts';
import { readBody } from '../../../edge/body/read-body.ts';

const enc = (s: string) => new TextEncoder().encode(s);

describe('scanJson', () => {
  it('measures the byte size of each batch element, multi-byte text included', () => {
    const events = [{ a: 'é€😀' }, { b: [1, { c: '"]},' }] }, 'x', 5];
    const text = JSON.stringify({ writeKey: 'k', batch: events, context: {} });
    const scan = scanJson(enc(text), MAX_JSON_DEPTH);
    expect(scan.kind === 'ok' && scan.topLevelArrays.get('batch')).toEqual(events.map((e) => enc(JSON.stringify(e)).byteLength));
  });

  it('agrees with JSON.stringify on any batch (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue({ maxDepth: 4 }), { maxLength: 8 }), (batch) => {
        const scan = scanJson(enc(JSON.stringify({ batch })), 64);
        const expected = batch.map((e) => enc(JSON.stringify(e)).byteLength);
        return scan.kind === 'ok' && JSON.stringify(scan.topLevelArrays.get('batch')) === JSON.stringify(expected);
      }),
    );
  });

  it('counts depth with the top-level value at depth 1, ignoring brackets inside strings', () => {
    expect(scanJson(enc('[[["[[[[[[[["]]]'), 3).kind).toBe('ok');
    expect(scanJson(enc('[[[[]]]]'), 3)).toEqual({ kind: 'too_deep', offset: 3 });
    expect(scanJson(enc('{"a":"\\"[[[["}'), 1).kind).toBe('ok');
  });

  it('never throws on arbitrary bytes (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => ['ok', 'too_deep'].includes(scanJson(bytes, 4).kind)));
  });
});

describe('parseJsonBody', () => {
  it('parses a body and never throws on arbitrary bytes (property)', () => {
    expect(parseJsonBody(enc('{"a":[1,2]}'))).toMatchObject({ kind: 'ok', value: { a: [1, 2] } });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => ['ok', 'reject'].includes(parseJsonBody(bytes).kind)));
  });

  it('strips a UTF-8 byte order mark', () => {
    expect(parseJsonBody(new Uint8Array([0xef, 0xbb, 0xbf, ...enc('{"a":1}')]))).toMatchObject({ kind: 'ok', value: { a: 1 } });
  });
});

describe('readBody', () => {
  it('refuses a declared Content-Length over the cap before reading', async () => {
    const req = new Request('http://x/', { method: 'POST', body: 'x'.repeat(10), headers: { 'content-length': '999999' } });
    expect(await readBody(req, 100)).toMatchObject({ kind: 'reject', status: 413, code: 'payload_too_large' });
  });

  it('treats a missing body as empty', async () => {
    expect(await readBody(new Request('http://x/', { method: 'POST' }), 100)).toEqual({ kind: 'ok', bytes: new Uint8Array(0) });
  });
});
