import type { FieldError } from '../../schemas/validators.ts';
import type { RejectedRecord } from '../../schemas/rejected-record.ts';
import { createPathNormalizer, UNKNOWN } from './path.ts';
import { scrubText, type Scrub } from './scrub.ts';

/**
 * The rejected record that leaves the edge for one invalid event (topic `rejected`,
 * docs/CONTRACTS.md), and the gateway's check of what Workers and Deno edges post: both call
 * this function, so the gateway stores exactly what a well-behaved edge sends, and a raw record
 * from a buggy or hostile edge is redacted the same way. Redaction is idempotent: a record
 * redacted by the edge passes the gateway unchanged.
 *
 * `message_id`, error paths and texts and `site` are scrubbed ({@link Scrub}); `event` is
 * {@link redactEvent}'s copy; anything else is dropped.
 *
 * @example
 * ```ts
 * redactRejectedRecord({ site: 's', received_at: now, index: 0, message_id: 'm1', errors, event: raw }, { scrub, userPseudonym });
 * ```
 */
export function redactRejectedRecord(record: unknown, o: { scrub?: Scrub; userPseudonym?: string | undefined } = {}): RejectedRecord {
  const scrub = o.scrub ?? scrubText;
  const r = isObject(record) ? record : {};
  return {
    site: typeof r.site === 'string' ? scrub(r.site.slice(0, 128)) : '',
    received_at: typeof r.received_at === 'string' && TIME_LIKE.test(r.received_at) ? r.received_at : '',
    index: typeof r.index === 'number' && Number.isSafeInteger(r.index) && r.index > 0 ? r.index : 0,
    message_id: typeof r.message_id === 'string' ? capped(r.message_id, 100, scrub) : null,
    errors: redactErrors(r.errors, scrub),
    event: redactEvent(r.event, o.userPseudonym, scrub),
  };
}

const MAX_ERRORS = 32;

/** Cut before scrubbing (bounded cost) and after (a replacement can be longer), so a second pass changes nothing. */
function capped(s: string, max: number, scrub: Scrub): string {
  return scrub(s.slice(0, max)).slice(0, max);
}

function redactErrors(errors: unknown, scrub: Scrub): FieldError[] {
  if (!Array.isArray(errors)) return [];
  return errors.slice(0, MAX_ERRORS).map((e: unknown) => {
    const err = isObject(e) ? e : {};
    return {
      path: typeof err.path === 'string' ? scrubPointer(err.path.slice(0, 512), scrub).slice(0, 512) : '',
      message: typeof err.message === 'string' ? capped(err.message, 512, scrub) : '',
    };
  });
}

/** A JSON pointer scrubbed token by token: a key `/reset/tok_x` is `~1reset~1tok_x` in it. */
function scrubPointer(pointer: string, scrub: Scrub): string {
  return pointer
    .split('/')
    .map((t) => {
      const key = t.replaceAll('~1', '/').replaceAll('~0', '~');
      const s = scrub(key);
      return s === key ? t : s.replaceAll('~', '~0').replaceAll('/', '~1');
    })
    .join('/');
}

/**
 * A copy of a rejected event that is safe to leave the edge (ARCHITECTURE §3.6): it keeps the
 * structure and the fields needed to debug the rejection, and replaces every free-text or
 * personal value by its type, e.g. `"[string:23]"`. Raw user ids are replaced by the
 * pseudonym when one could be computed; traits, IPs, user agents and URLs never survive.
 * What is kept verbatim (event name, messageId, library name, keys) is scrubbed.
 * Idempotent: `redactEvent(redactEvent(e, p))` equals `redactEvent(e, p)`.
 */
export function redactEvent(event: unknown, userPseudonym?: string, scrub: Scrub = scrubText): unknown {
  if (!isObject(event)) return shape(event, 0, scrub);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(event).slice(0, MAX_KEYS)) {
    const value = event[key];
    if (key === 'userId' || key === 'anonymousId' || key === 'writeKey') continue;
    if (key === 'userPseudonym') {
      // Already redacted (the gateway's pass over an edge's record): a pseudonym is 16 hex digits.
      if (userPseudonym === undefined && typeof value === 'string' && PSEUDONYM.test(value)) out.userPseudonym = value;
      continue;
    }
    const keep = KEEP.get(key);
    if (keep !== undefined) out[key] = kept(value, keep, scrub, 1);
    else if (key === 'context') out[key] = redactContext(value, scrub);
    else setSafe(out, key, shape(value, 1, scrub), scrub);
  }
  if (userPseudonym !== undefined) out.userPseudonym = userPseudonym;
  return out;
}

// Fields kept (scrubbed) when they look like what they should be: they identify the message or
// are aggregated anyway (the event name), not the person. A timestamp that is not an RFC 3339
// date-time (it could hold an IP or a phone number) is shaped like every other value.
const TIME_LIKE = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?)?$/;
const PSEUDONYM = /^[0-9a-f]{16}$/;
// A Map, not an object literal: `KEEP.get('toString')` must not find Object.prototype's.
const KEEP = new Map<string, RegExp>([
  ['type', /^[A-Za-z_]{1,32}$/],
  ['event', /^[^]{1,200}$/],
  ['messageId', /^[^]{1,100}$/],
  ['timestamp', TIME_LIKE],
  ['originalTimestamp', TIME_LIKE],
  ['sentAt', TIME_LIKE],
  ['receivedAt', TIME_LIKE],
]);
const MAX_KEYS = 64;
const MAX_DEPTH = 4;
const MAX_ITEMS = 8;

/** `value` scrubbed when it and its scrubbed form both look right, else its shape (so a second pass keeps it). */
function kept(value: unknown, form: RegExp, scrub: Scrub, depth: number): unknown {
  if (typeof value === 'string' && form.test(value)) {
    const s = scrub(value);
    if (form.test(s)) return s;
  }
  return shape(value, depth, scrub);
}

function redactContext(value: unknown, scrub: Scrub): unknown {
  if (!isObject(value)) return shape(value, 1, scrub);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).slice(0, MAX_KEYS)) {
    const v = value[key];
    if (key === 'library' && isObject(v)) {
      out.library = { name: kept(v.name, SHORT, scrub, 3), version: kept(v.version, SHORT, scrub, 3) };
    } else if (key === 'page' && isObject(v)) {
      const shaped = shape(v, 2, scrub) as Record<string, unknown>;
      if (typeof v.path === 'string') shaped.path = redactPath(v.path, scrub);
      out.page = shaped;
    } else {
      setSafe(out, key, shape(v, 2, scrub), scrub);
    }
  }
  return out;
}

const SHORT = /^[^]{0,64}$/;

// One path normalizer (and its cache) per scrubber.
const pathNormalizers = new WeakMap<Scrub, (raw: string) => string>();

/** The path as the `path` dimension has it, without any query (idempotent: `unknown` stays). */
function redactPath(raw: string, scrub: Scrub): string {
  if (raw === UNKNOWN) return raw;
  let normalize = pathNormalizers.get(scrub);
  if (normalize === undefined) {
    const n = createPathNormalizer({ allowlist: [], cacheSize: 1000, scrub });
    normalize = (p) => n({ path: p });
    pathNormalizers.set(scrub, normalize);
  }
  return normalize(raw);
}

// What shape() writes: a second pass keeps it as it is.
const PLACEHOLDER = /^\[(?:string:\d{1,10}|number|boolean|object|array|bigint|symbol|function|undefined|\+\d{1,10} more)\]$/;
const MORE = /^\[\+\d{1,10} more\]$/;

function shape(value: unknown, depth: number, scrub: Scrub): unknown {
  if (value === null) return null;
  if (typeof value === 'string') return PLACEHOLDER.test(value) ? value : `[string:${value.length}]`;
  if (typeof value === 'number') return '[number]';
  if (typeof value === 'boolean') return '[boolean]';
  if (depth >= MAX_DEPTH) return Array.isArray(value) ? '[array]' : typeof value === 'object' ? '[object]' : `[${typeof value}]`;
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ITEMS).map((v) => shape(v, depth + 1, scrub));
    const rest = value.length - MAX_ITEMS;
    // `[…8 items, "[+n more]"]` is an array this function already shortened.
    if (rest === 1 && typeof value[MAX_ITEMS] === 'string' && MORE.test(value[MAX_ITEMS])) items.push(value[MAX_ITEMS]);
    else if (rest > 0) items.push(`[+${rest} more]`);
    return items;
  }
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).slice(0, MAX_KEYS)) setSafe(out, key, shape((value as Record<string, unknown>)[key], depth + 1, scrub), scrub);
    return out;
  }
  return `[${typeof value}]`;
}

// The parser already refuses these keys; skipping them here keeps this function safe on its own.
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const MAX_KEY_CHARS = 128;

function setSafe(out: Record<string, unknown>, key: string, value: unknown, scrub: Scrub): void {
  if (UNSAFE_KEYS.has(key)) return;
  // Cut after scrubbing (a cut must not split an address into parts the scrubber misses), and
  // mark the cut so a second pass finds the same key.
  const scrubbed = scrub(key);
  const safe = scrubbed.length <= MAX_KEY_CHARS ? scrubbed : `${scrubbed.slice(0, MAX_KEY_CHARS)}…`;
  if (!UNSAFE_KEYS.has(safe)) out[safe] = value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
