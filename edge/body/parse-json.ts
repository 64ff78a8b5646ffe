import { rejection, type RequestRejection } from '../errors.ts';
import { scanJson } from './scan-json.ts';

/** Nesting deeper than this is refused: no legitimate analytics event needs it. */
export const MAX_JSON_DEPTH = 32;

/** Keys that could reach an object's prototype if a later step copied or merged the value. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
// Cheap pre-check: the walk runs only when one of the names, or a \u escape that could spell
// one, occurs anywhere in the text.
const SUSPICIOUS = /__proto__|constructor|prototype|\\u/;

export type ParsedBody =
  | { kind: 'ok'; value: unknown; /** byte sizes of the elements of arrays under the top-level object, by key */ arrayElementBytes: Map<string, number[]> }
  | RequestRejection;

// ignoreBOM spelled out (its default): workers-types declares both options required.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

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
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return rejection(400, 'invalid_utf8', 'the body is not valid UTF-8: encode the JSON text as UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const detail = e instanceof SyntaxError ? `: ${e.message}` : '';
    return rejection(400, 'invalid_json', `the body is not valid JSON${detail}. Send one JSON event or {"batch":[...]}`);
  }
  if (SUSPICIOUS.test(text)) {
    const at = findForbiddenKey(value, '');
    if (at !== undefined) {
      return rejection(400, 'forbidden_key', `key ${JSON.stringify(at.key)} at ${at.path || '/'} is not allowed: rename it (the keys __proto__, constructor and prototype are refused to prevent prototype pollution)`);
    }
  }
  return { kind: 'ok', value, arrayElementBytes: scan.topLevelArrays };
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
