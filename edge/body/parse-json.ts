import { rejection, type RequestRejection } from '../errors.ts';
import { scanJson, type JsonScan } from './scan-json.ts';

/** Nesting deeper than this is refused: no legitimate analytics event needs it. */
export const MAX_JSON_DEPTH = 32;

/** Keys that could reach an object's prototype if a later step copied or merged the value. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export type ParsedBody =
  | { kind: 'ok'; value: unknown; /** byte sizes of the elements of arrays under the top-level object, by key */ arrayElementBytes: Map<string, number[]> }
  | RequestRejection;

// ignoreBOM spelled out (its default): workers-types declares both options required.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
// For pieces of a body: a U+FEFF inside a string is a character, not a byte order mark.
const utf8Piece = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Bytes -> JSON value, refusing what must never reach the pipeline: invalid UTF-8, nesting
 * deeper than {@link MAX_JSON_DEPTH}, and the keys `__proto__`, `constructor`, `prototype`
 * anywhere. Never throws.
 */
export function parseJsonBody(bytes: Uint8Array): ParsedBody {
  if (bytes.byteLength === 0) return rejection(400, 'invalid_json', 'the body is empty: send one JSON event or {"batch":[...]}');
  const scan = scanJson(bytes, MAX_JSON_DEPTH);
  if (scan.kind === 'too_deep') {
    return rejection(400, 'nesting_too_deep', `JSON nesting is deeper than ${MAX_JSON_DEPTH} levels (at byte ${scan.offset}): flatten the event properties`);
  }
  const text = decodeJsonText(bytes, scan);
  if (text === undefined) return rejection(400, 'invalid_utf8', 'the body is not valid UTF-8: encode the JSON text as UTF-8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const detail = e instanceof SyntaxError ? `: ${e.message}` : '';
    return rejection(400, 'invalid_json', `the body is not valid JSON${detail}. Send one JSON event or {"batch":[...]}`);
  }
  if (scan.suspiciousKeys) {
    const at = findForbiddenKey(value, '');
    if (at !== undefined) {
      return rejection(400, 'forbidden_key', `key ${JSON.stringify(at.key)} at ${at.path || '/'} is not allowed: rename it (the keys __proto__, constructor and prototype are refused to prevent prototype pollution)`);
    }
  }
  return { kind: 'ok', value, arrayElementBytes: scan.topLevelArrays };
}

/**
 * UTF-8 bytes -> the JSON text, or undefined when they are not valid UTF-8.
 *
 * Why not just `TextDecoder.decode(bytes)`: decoders copy pure ASCII in a fast path, but one
 * non-ASCII character anywhere (an em dash in a page title) sends the whole body through the
 * slow path (about 20x slower on V8: as long as JSON.parse itself for analytics batches) and
 * makes the text two-byte, which JSON.parse also reads slower. So only the strings holding
 * non-ASCII bytes are decoded on their own and written back as `\uXXXX` escapes, which
 * JSON.parse turns into exactly the same characters; the rest takes the ASCII fast path.
 * Validity is unchanged: multi-byte sequences lie inside those strings, and every piece is
 * decoded with a fatal decoder.
 */
function decodeJsonText(bytes: Uint8Array, scan: Extract<JsonScan, { kind: 'ok' }>): string | undefined {
  try {
    const strings = scan.nonAsciiStrings;
    if (strings.length === 0 || scan.nonAsciiOutside) return utf8.decode(bytes);
    // A plain view: subarray() of a subclass (node's Buffer) constructs through the subclass, slower.
    if (bytes.constructor !== Uint8Array) bytes = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // Every piece stays one-byte (ASCII), so the joined text is one-byte too.
    let text = '';
    let from = 0;
    for (let k = 0; k < strings.length; k += 2) {
      const end = strings[k + 1] as number;
      for (let i = strings[k] as number; i < end; i++) {
        if ((bytes[i] as number) < 0x80) continue;
        let run = i + 1;
        while (run < end && (bytes[run] as number) >= 0x80) run++;
        // A backslash escaping a non-ASCII character is invalid JSON; escaping would make it valid.
        let backslashes = 0;
        while (bytes[i - 1 - backslashes] === BACKSLASH) backslashes++;
        if (backslashes % 2 === 1) return utf8.decode(bytes);
        text += utf8Piece.decode(bytes.subarray(from, i)) + escaped(utf8Piece.decode(bytes.subarray(i, run)));
        from = run;
        i = run - 1;
      }
    }
    return text + utf8Piece.decode(bytes.subarray(from));
  } catch {
    return undefined;
  }
}

const HEX = '0123456789abcdef';
const BACKSLASH = 0x5c;

/** Each UTF-16 unit as `\\uXXXX` (surrogate pairs as two escapes, as JSON spells them). */
function escaped(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += `\\u${HEX[c >> 12]}${HEX[(c >> 8) & 15]}${HEX[(c >> 4) & 15]}${HEX[c & 15]}`;
  }
  return out;
}

function findForbiddenKey(value: unknown, path: string): { key: string; path: string } | undefined {
  // Depth is bounded by MAX_JSON_DEPTH (checked above), so recursion is safe.
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findForbiddenKey(value[i], `${path}/${i}`);
      if (found) return found;
    }
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(key)) return { key, path };
    const found = findForbiddenKey((value as Record<string, unknown>)[key], `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`);
    if (found) return found;
  }
  return undefined;
}
