/**
 * One pass over the raw JSON bytes, before anything is decoded or parsed:
 * - refuses nesting deeper than `maxDepth` early (JSON.parse would recurse, and a 512 KiB
 *   `[[[[...` must cost a loop, not a stack);
 * - measures the byte size of each element of each array directly under the top-level object
 *   (the events of `{ batch: [...] }`), so the per-event byte limit needs no re-serialization;
 * - finds the strings holding non-ASCII bytes, so decoding can take the decoder's ASCII fast
 *   path for everything else (see parse-json.ts);
 * - flags a string spelled exactly `__proto__`, `prototype` or `constructor`, or holding a `\u`
 *   escape (the only way to spell those names otherwise): only then can a forbidden key exist.
 *
 * Works on UTF-8 bytes because every JSON structural character is ASCII and every byte of a
 * multi-byte sequence is >= 0x80. Malformed JSON is not reported here: JSON.parse does that.
 */
export type JsonScan =
  | {
      kind: 'ok';
      topLevelArrays: Map<string, number[]>;
      /** `[start, end)` byte offsets of the contents of each string holding a byte >= 0x80, flat. */
      nonAsciiStrings: number[];
      /** A byte >= 0x80 outside any string (a BOM, or JSON that will not parse). */
      nonAsciiOutside: boolean;
      /** A string that is, or may spell through escapes, a forbidden key name. */
      suspiciousKeys: boolean;
    }
  | { kind: 'too_deep'; offset: number };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

const LOWER_U = 0x75;

const keyDecoder = new TextDecoder();

// __proto__, prototype, constructor as bytes: compared only against strings of their length.
const FORBIDDEN_NAMES = ['__proto__', 'prototype', 'constructor'].map((n) => new TextEncoder().encode(n));

function isForbiddenName(bytes: Uint8Array, from: number, to: number): boolean {
  const length = to - from;
  if (length !== 9 && length !== 11) return false;
  outer: for (const name of FORBIDDEN_NAMES) {
    if (name.length !== length) continue;
    for (let k = 0; k < length; k++) if (bytes[from + k] !== name[k]) continue outer;
    return true;
  }
  return false;
}

export function scanJson(bytes: Uint8Array, maxDepth: number): JsonScan {
  const topLevelArrays = new Map<string, number[]>();
  const nonAsciiStrings: number[] = [];
  let nonAsciiOutside = false;
  let suspiciousKeys = false;
  let depth = 0;
  let topIsObject = false;
  let keyStart = -1;
  let keyEnd = -1;
  // The array under the top-level object currently being measured.
  let sizes: number[] | undefined;
  let elementStart = 0;

  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    switch (b) {
      case QUOTE: {
        // Strings are most of the bytes: skip to the closing quote in a tight loop (escapes
        // skip one byte) rather than dispatching every byte through the switch.
        let end = i + 1;
        let high = 0;
        for (;;) {
          const c = bytes[end];
          if (c === QUOTE) break;
          if (c === undefined) return { kind: 'ok', topLevelArrays, nonAsciiStrings, nonAsciiOutside, suspiciousKeys };
          if (c === BACKSLASH) {
            if (bytes[end + 1] === LOWER_U) suspiciousKeys = true;
            end += 2;
          } else {
            high |= c;
            end++;
          }
        }
        if (high >= 0x80) nonAsciiStrings.push(i + 1, end);
        if (!suspiciousKeys && isForbiddenName(bytes, i + 1, end)) suspiciousKeys = true;
        if (depth === 1) {
          // The last string read at depth 1 before a `[` is that array's key.
          keyStart = i + 1;
          keyEnd = end;
        }
        i = end;
        break;
      }
      case OPEN_OBJECT:
      case OPEN_ARRAY:
        if (depth === 0) topIsObject = b === OPEN_OBJECT;
        depth++;
        if (depth > maxDepth) return { kind: 'too_deep', offset: i };
        if (b === OPEN_ARRAY && depth === 2 && topIsObject && keyStart >= 0) {
          sizes = [];
          topLevelArrays.set(keyDecoder.decode(bytes.subarray(keyStart, keyEnd)), sizes);
          elementStart = i + 1;
        }
        break;
      case COMMA:
        if (depth === 2 && sizes !== undefined) {
          sizes.push(i - elementStart);
          elementStart = i + 1;
        }
        break;
      case CLOSE_OBJECT:
      case CLOSE_ARRAY:
        if (b === CLOSE_ARRAY && depth === 2 && sizes !== undefined) {
          if (hasContent(bytes, elementStart, i)) sizes.push(i - elementStart);
          sizes = undefined;
        }
        depth--;
        break;
      default:
        if (b >= 0x80) nonAsciiOutside = true;
        break;
    }
  }
  return { kind: 'ok', topLevelArrays, nonAsciiStrings, nonAsciiOutside, suspiciousKeys };
}

function hasContent(bytes: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const b = bytes[i] as number;
    if (b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) return true;
  }
  return false;
}
