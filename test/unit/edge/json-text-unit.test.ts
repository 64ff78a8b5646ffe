/**
 * parseJsonBody decodes only the strings holding non-ASCII bytes on their own (as `\uXXXX`
 * escapes) and everything else through the decoder's ASCII fast path. Held here to the plain
 * way — one fatal TextDecoder over the whole body, then JSON.parse — on any input: same value,
 * same refusal.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, parseJsonBody } from '../../../edge/body/parse-json.ts';
import { scanJson } from '../../../edge/body/scan-json.ts';

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

function hasForbiddenKey(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(hasForbiddenKey);
  if (v === null || typeof v !== 'object') return false;
  return Object.keys(v).some((k) => FORBIDDEN.has(k) || hasForbiddenKey((v as Record<string, unknown>)[k]));
}

/** The straightforward parse, as the edge did it before: the oracle. */
function reference(bytes: Uint8Array): { code: string } | { value: unknown } {
  if (bytes.byteLength === 0) return { code: 'invalid_json' };
  if (scanJson(bytes, MAX_JSON_DEPTH).kind === 'too_deep') return { code: 'nesting_too_deep' };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { code: 'invalid_utf8' };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { code: 'invalid_json' };
  }
  return hasForbiddenKey(value) ? { code: 'forbidden_key' } : { value };
}

function actual(bytes: Uint8Array): { code: string } | { value: unknown } {
  const r = parseJsonBody(bytes);
  return r.kind === 'ok' ? { value: r.value } : { code: r.code };
}

const enc = new TextEncoder();
const text = fc.string({ unit: 'binary', maxLength: 12 });
const json = fc.jsonValue({ maxDepth: 4 }).chain((base) =>
  // jsonValue's strings are mostly ASCII: mix in any code point, in keys and values.
  fc.tuple(fc.constant(base), fc.dictionary(text, fc.oneof(text, fc.integer()), { maxKeys: 4 }), text).map(([b, extra, s]) => ({ b, extra, s, batch: [{ type: 'track', event: s }] })),
);

describe('parseJsonBody text decoding', () => {
  it('parses JSON with any code points exactly like decode-then-parse', () => {
    fc.assert(
      fc.property(json, (value) => {
        const bytes = enc.encode(JSON.stringify(value));
        expect(actual(bytes)).toEqual(reference(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses mangled bytes exactly like decode-then-parse', () => {
    const mangled = fc
      .tuple(json, fc.array(fc.tuple(fc.nat(), fc.constantFrom(0x5c, 0x80, 0xbf, 0xc3, 0xe2, 0xef, 0xf0, 0xff, 0x22, 0x7b)), { minLength: 1, maxLength: 3 }))
      .map(([value, edits]) => {
        const bytes = [...enc.encode(JSON.stringify(value))];
        for (const [at, b] of edits) bytes.splice(at % (bytes.length + 1), 0, b);
        return new Uint8Array(bytes);
      });
    fc.assert(
      fc.property(mangled, (bytes) => {
        expect(actual(bytes)).toEqual(reference(bytes));
      }),
      { numRuns: 3000 },
    );
  });

  it.each([
    ['an em dash and an emoji', '{"event":"Bestellung — bestätigt 🎉"}'],
    ['a non-ASCII key', '{"größe":"XL","batch":[]}'],
    ['U+FEFF inside a string (a character, not a byte order mark)', '{"a":"\uFEFFx"}'],
    ['a leading byte order mark', '\uFEFF{"a":"é"}'],
    ['escapes next to non-ASCII text', '{"a":"\\\\é\\"ü\\n"}'],
    ['a backslash escaping a non-ASCII character (invalid)', '{"a":"\\é"}'],
    ['non-ASCII outside strings (invalid)', '{"a":1é}'],
    ['a \\u escape spelling __proto__', '{"\\u005f_proto__":{}}'],
    ['constructor as a value, not a key', '{"a":"constructor","b":"prototype"}'],
  ])('%s', (_what, body) => {
    const bytes = enc.encode(body);
    expect(actual(bytes)).toEqual(reference(bytes));
  });

  it('keeps the element sizes of the raw bytes', () => {
    const events = [{ event: 'ä' }, { event: 'x' }];
    const r = parseJsonBody(enc.encode(JSON.stringify({ batch: events })));
    expect(r.kind === 'ok' && r.arrayElementBytes.get('batch')).toEqual(events.map((e) => enc.encode(JSON.stringify(e)).byteLength));
  });
});
