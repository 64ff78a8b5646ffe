import { normalizePath } from './dimensions.ts';
import { scrubText } from './scrub.ts';

/**
 * A copy of a rejected event that is safe to leave the edge (DESIGN §3.6): it keeps the
 * structure and the fields needed to debug the rejection, and replaces every free-text or
 * personal value by its type, e.g. `"[string:23]"`. Raw user ids are replaced by the
 * pseudonym when one could be computed; traits, IPs, user agents and URLs never survive.
 * What is kept verbatim (event name, messageId, library name, keys) is scrubbed of e-mail
 * addresses, IPs and phone numbers.
 */
export function redactEvent(event: unknown, userPseudonym?: string): unknown {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) return shape(event, 0);
  const src = event as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(src).slice(0, MAX_KEYS)) {
    const value = src[key];
    if (key === 'userId' || key === 'anonymousId' || key === 'writeKey') continue;
    const keep = KEEP[key];
    if (keep !== undefined && typeof value === 'string' && keep.test(value)) out[key] = scrubText(value);
    else if (key === 'context') out[key] = redactContext(value);
    else setSafe(out, key, shape(value, 1));
  }
  if (userPseudonym !== undefined) out.userPseudonym = userPseudonym;
  return out;
}

// Fields kept (scrubbed) when they look like what they should be: they identify the message or
// are aggregated anyway (the event name), not the person. A timestamp that is not an RFC 3339
// date-time (it could hold an IP or a phone number) is shaped like every other value.
const TIME_LIKE = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?)?$/;
const KEEP: Partial<Record<string, RegExp>> = {
  type: /^[A-Za-z_]{1,32}$/,
  event: /^[^]{1,200}$/,
  messageId: /^[^]{1,100}$/,
  timestamp: TIME_LIKE,
  originalTimestamp: TIME_LIKE,
  sentAt: TIME_LIKE,
  receivedAt: TIME_LIKE,
};
const MAX_KEYS = 64;
const MAX_DEPTH = 4;
const MAX_ITEMS = 8;

function redactContext(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return shape(value, 1);
  const ctx = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(ctx).slice(0, MAX_KEYS)) {
    const v = ctx[key];
    if (key === 'library' && v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const lib = v as Record<string, unknown>;
      out.library = { name: shortString(lib.name), version: shortString(lib.version) };
    } else if (key === 'page' && v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const page = v as Record<string, unknown>;
      const shaped = shape(page, 2) as Record<string, unknown>;
      if (typeof page.path === 'string') shaped.path = normalizePath(page.path);
      out.page = shaped;
    } else {
      setSafe(out, key, shape(v, 2));
    }
  }
  return out;
}

function shortString(v: unknown): unknown {
  return typeof v === 'string' && v.length <= 64 ? scrubText(v) : shape(v, 3);
}

function shape(value: unknown, depth: number): unknown {
  if (value === null) return null;
  if (typeof value === 'string') return `[string:${value.length}]`;
  if (typeof value === 'number') return '[number]';
  if (typeof value === 'boolean') return '[boolean]';
  if (depth >= MAX_DEPTH) return Array.isArray(value) ? '[array]' : '[object]';
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ITEMS).map((v) => shape(v, depth + 1));
    if (value.length > MAX_ITEMS) items.push(`[+${value.length - MAX_ITEMS} more]`);
    return items;
  }
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).slice(0, MAX_KEYS)) setSafe(out, key, shape((value as Record<string, unknown>)[key], depth + 1));
    return out;
  }
  return `[${typeof value}]`;
}

// The parser already refuses these keys; skipping them here keeps this function safe on its own.
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function setSafe(out: Record<string, unknown>, key: string, value: unknown): void {
  if (UNSAFE_KEYS.has(key)) return;
  const safe = scrubText(key.length <= 128 ? key : `${key.slice(0, 128)}…`);
  if (!UNSAFE_KEYS.has(safe)) out[safe] = value;
}
