import fc from 'fast-check';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, parseJsonBody } from '../../../edge/body/parse-json.ts';
import { scanJson } from '../../../edge/body/scan-json.ts';
import { inflateGzip, MAX_GZIP_MEMBERS, readBody } from '../../../edge/body/read-body.ts';

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

describe('inflateGzip: several members, the same rule on every runtime', () => {
  const gz = (s: string | Uint8Array, level = 6) => new Uint8Array(gzipSync(s, { level }));
  const cat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
  const text = (r: Awaited<ReturnType<typeof inflateGzip>>) => (r.kind === 'ok' ? new TextDecoder().decode(r.bytes) : r.kind);

  it('reads concatenated members as one document', async () => {
    expect(text(await inflateGzip(cat(gz('{"batch":'), gz('[1,'), gz('2]}')), 1024))).toBe('{"batch":[1,2]}');
  });

  it('is not fooled by gzip header bytes inside a member', async () => {
    // Stored (level 0) data holding 1f 8b 08: false boundaries the member split must skip.
    const tricky = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0x1f, 0x8b, 0x08]), Buffer.from('x"}')]);
    const r = await inflateGzip(cat(gz(tricky, 0), gz(' ', 0)), 1024);
    expect(r.kind === 'ok' && Buffer.from(r.bytes).equals(Buffer.concat([tricky, Buffer.from(' ')]))).toBe(true);
  });

  it(`refuses more than ${MAX_GZIP_MEMBERS} members, and counts the cap over all of them`, async () => {
    const members = (n: number) => cat(...Array.from({ length: n }, () => gz('x')));
    expect(text(await inflateGzip(members(MAX_GZIP_MEMBERS), 1024))).toBe('x'.repeat(MAX_GZIP_MEMBERS));
    expect(text(await inflateGzip(members(MAX_GZIP_MEMBERS + 1), 1024))).toBe('error');
    expect(text(await inflateGzip(members(10), 9))).toBe('over');
  });

  it('refuses junk after a member and an empty body', async () => {
    expect(text(await inflateGzip(cat(gz('{}'), new TextEncoder().encode('junk')), 1024))).toBe('error');
    expect(text(await inflateGzip(new Uint8Array(0), 1024))).toBe('error');
  });

  it('stops a gzip bomb at the cap after a few KiB of input', async () => {
    const bomb = gz(Buffer.alloc(64 * 1024 * 1024, 0x20), 9);
    const r = await inflateGzip(bomb, 512 * 1024);
    expect(r.kind).toBe('over');
    expect(r.fed).toBeLessThan(bomb.byteLength / 2);
  });
});
