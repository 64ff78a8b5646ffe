import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/min';
import { createBoundedCache } from '../bounded-cache.ts';
import { readTrimmed, type Env } from '../config/index.ts';

/**
 * Free-text scrubbing (ARCHITECTURE §3.6, docs/EDGE.md "What is scrubbed"). Every string that leaves
 * the edge — event names, paths and kept query values, referrer domains, and what rejected
 * records keep verbatim (messageId, event name, library name, object keys, error texts) — goes
 * through one {@link Scrub} function:
 *
 * - e-mail addresses → `[email]`: also IDN (`ålice@exämple.com`), hosts without a dot
 *   (`carol@localhost`), `%40` and double-encoded `%2540`, `(at)`/`[at]`/`{at}`, ` @ ` and
 *   `(dot)`;
 * - IPv4 and IPv6 addresses → `[ip]`;
 * - Luhn-valid card numbers of 13–19 digits starting with 2–6 (the card industries), bare or
 *   grouped by single spaces or dashes → `[card]`;
 * - phone numbers → `[phone]`: 7–15 digits starting with `+` or grouped by spaces, dots, dashes
 *   or parentheses, and bare digit runs that libphonenumber (libphonenumber-js) accepts as a
 *   valid national number: NANP (US/CA, `4155550199`, `14155550199`) and, with a trunk `0`,
 *   the regions of {@link TRUNK_ZERO_REGIONS};
 * - secret-looking segments (`PATH_SECRET_PATTERNS`, {@link parsePathSecretPatterns}) → `[secret]`.
 *
 * Left alone, because they are ids and times far more often than personal data: UUIDs (also
 * all-digit ones), hex ids, dates, times, epoch timestamps, semver, digit runs glued to letters
 * (`ORD12345678901`), and numbers libphonenumber does not accept.
 */
export type Scrub = (s: string) => string;

/** How segments are judged secret: see {@link parsePathSecretPatterns}. */
export interface PathSecretPatterns {
  /** Lower-cased segment names whose next segment is a secret (`reset` for `/reset/<token>`). */
  after: readonly string[];
  /** Whole-segment patterns. */
  segments: readonly RegExp[];
  /** Long mixed-case random tokens (`random` in the list). */
  randomTokens: boolean;
  /** The source text, for logs and documentation. */
  source: string;
}

/** The default of `PATH_SECRET_PATTERNS` (README). */
export const DEFAULT_PATH_SECRET_PATTERNS =
  'reset/* password-reset/* reset-password/* magic-link/* invite/* verify/* confirm/* activate/* unsubscribe/* token/* random ' +
  '(?:tok|sk|rk|pk|whsec|sess|ghp|gho|ghs|ghu|ghr|github_pat)_[A-Za-z0-9_]+ xox[abprs]-[A-Za-z0-9-]+';

/**
 * Parses `PATH_SECRET_PATTERNS`: entries separated by whitespace; `name/*` makes the segment
 * after a segment `name` (case-insensitive) secret unless it is a plain word (`/reset/password`
 * stays, `/reset/Xk3…` does not); `random` matches long random tokens (24+ characters of
 * letters, digits, `_` and `-`, mixing upper case, lower case and digits with short runs of each:
 * not hex ids, not UUIDs, not CamelCase names); anything else is a regular expression that must
 * match a whole segment. `none` disables the rule.
 *
 * @example
 * ```ts
 * parsePathSecretPatterns('reset/* tok_\\w+'); // { ok: true, patterns: { after: ['reset'], segments: [/^(?:tok_\w+)$/], ... } }
 * ```
 */
export function parsePathSecretPatterns(raw: string | undefined): { ok: true; patterns: PathSecretPatterns } | { ok: false; errors: string[] } {
  const source = raw === undefined || raw.trim() === '' ? DEFAULT_PATH_SECRET_PATTERNS : raw.trim();
  const errors: string[] = [];
  const after: string[] = [];
  const segments: RegExp[] = [];
  let randomTokens = false;
  if (source.toLowerCase() !== 'none') {
    source.split(/\s+/).forEach((entry, i) => {
      if (entry === 'random') randomTokens = true;
      else if (/^[A-Za-z0-9_.~-]{1,64}\/\*$/.test(entry)) after.push(entry.slice(0, -2).toLowerCase());
      else {
        try {
          segments.push(new RegExp(`^(?:${entry})$`));
        } catch {
          errors.push(`PATH_SECRET_PATTERNS entry ${i + 1} is not a valid regular expression: use "name/*", "random" or a pattern for a whole segment, separated by spaces (or "none")`);
        }
      }
    });
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, patterns: { after, segments, randomTokens, source } };
}

/** `PATH_SECRET_PATTERNS` as the edges and the gateway read it: the text, or the default after an error (added to `errors`). */
export function readPathSecretPatterns(env: Env, errors: string[]): string {
  const r = parsePathSecretPatterns(readTrimmed(env, 'PATH_SECRET_PATTERNS'));
  if (r.ok) return r.patterns.source;
  errors.push(...r.errors);
  return DEFAULT_PATH_SECRET_PATTERNS;
}


/**
 * A scrubber for one configuration: `pathSecretPatterns` is the text of `PATH_SECRET_PATTERNS`
 * (configuration stays plain data: the Node edge hands it to its worker processes), already
 * validated by the configuration parser; an invalid one is a programmer error and throws.
 * Results of strings that need a look are cached (bounded): event names and paths repeat, and
 * libphonenumber costs tens of microseconds per candidate.
 *
 * @example
 * ```ts
 * const scrub = createScrubber({ pathSecretPatterns: config.pathSecretPatterns });
 * scrub('/card/4111111111111111'); // '/card/[card]'
 * ```
 */
export function createScrubber(o: { pathSecretPatterns?: string; cacheSize?: number } = {}): Scrub {
  const parsed = parsePathSecretPatterns(o.pathSecretPatterns);
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  const patterns = parsed.patterns;
  // (Compared by source: the configuration parses the default into an object of its own.)
  const customSegments = patterns.segments.length > 0 && patterns.source !== DEFAULT_PATH_SECRET_PATTERNS;
  const cache = createBoundedCache<string, string>(o.cacheSize ?? 10_000);
  return (s) => {
    // Custom segment patterns may match anything: then every string is looked at.
    if (!customSegments && !mayHoldPii(s)) return s;
    if (s.length > 256) return scrubUncached(s, patterns);
    const hit = cache.get(s);
    if (hit !== undefined) return hit;
    const out = scrubUncached(s, patterns);
    cache.set(s, out);
    return out;
  };
}

/**
 * The scrubber with the default `PATH_SECRET_PATTERNS`.
 *
 * @example
 * ```ts
 * scrubText('Signed up alice@example.com'); // 'Signed up [email]'
 * scrubText('call +1 (555) 123-4567');      // 'call [phone]'
 * ```
 */
export const scrubText: Scrub = createScrubber();

/**
 * True when `s` may hold something the scrubber replaces: the cheap pre-check of the hot path.
 * Everything it replaces needs one of `@ % : ( [ { / _ -`, four digits, or 24 characters (a
 * random token); most event names and dimension values have none of them.
 */
function mayHoldPii(s: string): boolean {
  if (s.length >= 24) return true;
  let digits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x40 /* @ */ || c === 0x25 /* % */ || c === 0x3a /* : */ || c === 0x28 /* ( */ || c === 0x5b /* [ */ || c === 0x7b /* { */ || c === 0x2f /* / */ || c === 0x5f /* _ */ || c === 0x2d /* - */) return true;
    if (c >= 0x30 && c <= 0x39 && ++digits >= 4) return true;
  }
  return false;
}

// UUIDs are ids, never personal data: kept verbatim and never looked into (an all-digit UUID
// would otherwise read as digit groups). A UUID glued to an at-sign is the local part of an
// address and is not protected.
const UUID = /(?<![0-9A-Za-z])[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?![0-9A-Za-z]|\s*[@([{]|%(?:25)*40)/g;

function scrubUncached(s: string, patterns: PathSecretPatterns): string {
  phoneChecksLeft = MAX_PHONE_CHECKS;
  // Secrets are judged on the whole string: `/reset/<uuid>` is a token, whatever its form.
  return scrubSecrets(scrubPersonalData(s), patterns);
}

function scrubPersonalData(s: string): string {
  if (!/[0-9A-Fa-f]{8}-/.test(s)) return scrubPart(s);
  let out = '';
  let last = 0;
  for (const m of s.matchAll(UUID)) {
    out += scrubPart(s.slice(last, m.index)) + m[0];
    last = m.index + m[0].length;
  }
  return out + scrubPart(s.slice(last));
}

function scrubPart(s: string): string {
  if (s === '') return s;
  let out = AT_SIGN.test(s) ? s.replace(EMAIL, (m, tight: string | undefined) => (tight === undefined || /\p{L}/u.test(tight) ? '[email]' : m)) : s;
  out = out.replace(IPV4, '[ip]').replace(IPV6, (m) => (isIpv6(m) ? '[ip]' : m));
  out = out.replace(DIGIT_RUN, (run: string) => scrubDigitRun(run));
  return out.replace(PHONE, (m) => (isGroupedPhone(m) ? '[phone]' : m));
}

// --- e-mail addresses ---------------------------------------------------------------------

const LOCAL = String.raw`(?:[\p{L}\p{M}\p{N}._+\-]|%[0-9A-Fa-f]{2})+`;
const LABEL = String.raw`(?:[\p{L}\p{M}\p{N}\-]|%(?!(?:25)*40)[0-9A-Fa-f]{2})+`;
const DOT = String.raw`(?:\.|%2[Ee]|\s*[([{<]\s*dot\s*[)\]}>]\s*)`;
// `local@host` needs no dot (`carol@localhost`, checked to hold a letter); spaced or spelled-out
// at-signs need a dotted domain with a top-level label, or `Meet @ 5pm` would be an address.
// The look-behind starts a match only where a local part starts: one scan per run (linear), not
// one per character of a long run without an at-sign (quadratic).
const EMAIL = new RegExp(
  `(?<![\\p{L}\\p{M}\\p{N}._+\\-%])${LOCAL}(?:(?:@|%(?:25)*40)(${LABEL}(?:${DOT}${LABEL})*)|(?:\\s*@\\s*|\\s*[([{<]\\s*at\\s*[)\\]}>]\\s*)${LABEL}(?:${DOT}${LABEL})*${DOT}\\p{L}[\\p{L}\\p{M}\\p{N}-]+)`,
  'giu',
);

const AT_SIGN = /@|%(?:25)*40|[([{<]\s*at\s*[)\]}>]/i;

// --- IP addresses -------------------------------------------------------------------------

const IPV4 = /(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])/g;
const IPV6 = /(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])/g;

function isIpv6(m: string): boolean {
  const groups = m.split(':').filter((g) => g !== '');
  // `12:30:45` is a time; a real address has more groups, or `::` with a hex letter or 3+ groups.
  if (groups.length >= 5) return true;
  return m.includes('::') && (groups.length >= 3 || /[a-f]/i.test(m));
}

// --- card numbers and bare phone numbers --------------------------------------------------

// A maximal run of digit groups joined by single spaces or dashes, not glued to letters or
// digits (a hex id or `ORD4111…` is an id), nor following `+` (an international phone number).
// `(?=(…))\1` takes the run whole (no backtracking into a shorter run).
const DIGIT_RUN = /(?<![\p{L}\p{N}+])(?=(\d+(?:[ -]\d+)*))\1(?![\p{L}\p{N}])/gu;
const MAX_GROUPS = 12;

function scrubDigitRun(run: string): string {
  const groups = run.split(/[ -]/);
  if (groups.length > MAX_GROUPS) return run;
  // The longest span of whole groups that is a card number (`exp 12 4111 1111 1111 1111`).
  for (let len = groups.length; len >= 1; len--) {
    for (let start = 0; start + len <= groups.length; start++) {
      const digits = groups.slice(start, start + len).join('');
      if (isCardNumber(digits)) {
        // The groups around the card are looked at again (a phone number next to it).
        const seps = run.match(/[ -]/g) ?? [];
        const before = start > 0 ? scrubDigitRun(rejoin(groups.slice(0, start), seps, 0)) + (seps[start - 1] as string) : '';
        const after = start + len < groups.length ? (seps[start + len - 1] as string) + scrubDigitRun(rejoin(groups.slice(start + len), seps, start + len)) : '';
        return `${before}[card]${after}`;
      }
    }
  }
  if (groups.length === 1 && isBarePhone(run)) return '[phone]';
  return run;
}

function rejoin(groups: string[], seps: string[], firstIndex: number): string {
  let out = '';
  groups.forEach((g, i) => (out += i === 0 ? g : (seps[firstIndex + i - 1] as string) + g));
  return out;
}

/** 13–19 digits, first digit 2–6 (card industries; epoch timestamps start with 1), Luhn-valid. */
function isCardNumber(digits: string): boolean {
  if (digits.length < 13 || digits.length > 19) return false;
  const first = digits.charCodeAt(0) - 0x30;
  if (first < 2 || first > 6) return false;
  let sum = 0;
  for (let i = digits.length - 1, double = false; i >= 0; i--, double = !double) {
    let d = digits.charCodeAt(i) - 0x30;
    if (double && (d *= 2) > 9) d -= 9;
    sum += d;
  }
  return sum % 10 === 0;
}

// libphonenumber parses take tens of microseconds: bounded per scrubbed string (a hostile event
// name or key with thousands of digit runs must not cost seconds). Single-threaded: reset per call.
const MAX_PHONE_CHECKS = 8;
let phoneChecksLeft = MAX_PHONE_CHECKS;

/** Regions whose national numbers are written with a trunk `0` and checked for bare runs starting with 0. */
export const TRUNK_ZERO_REGIONS: readonly CountryCode[] = ['GB', 'DE', 'FR', 'NL', 'IT', 'AU', 'IN', 'BR', 'JP'];

/**
 * A bare digit run that libphonenumber accepts as a valid phone number: NANP national numbers
 * (10 digits, or 11 with the leading 1), international numbers written with `00`, and national
 * numbers with a trunk `0` in {@link TRUNK_ZERO_REGIONS}. Other lengths are never parsed (cost).
 */
function isBarePhone(run: string): boolean {
  const n = run.length;
  if (n < 9 || n > 15) return false;
  if (run.startsWith('00')) return n >= 10 && checked(() => valid(`+${run.slice(2)}`, undefined));
  if (run.startsWith('0')) return n <= 12 && checked(() => TRUNK_ZERO_REGIONS.some((r) => valid(run, r)));
  // NANP: area code and exchange start with 2–9 (so epoch seconds, starting with 1, never parse).
  const national = n === 11 && run.charCodeAt(0) === 0x31 ? run.slice(1) : run;
  if (national.length === 10 && national.charCodeAt(0) >= 0x32 && national.charCodeAt(3) >= 0x32) return checked(() => valid(national, 'US'));
  return false;
}

/** `check()` while the string's budget of parses lasts; beyond it the candidate counts as a phone number. */
function checked(check: () => boolean): boolean {
  return phoneChecksLeft-- > 0 ? check() : true;
}

function valid(text: string, region: CountryCode | undefined): boolean {
  return parsePhoneNumberFromString(text, region)?.isValid() === true;
}

// --- grouped phone numbers ----------------------------------------------------------------

const PHONE = /(?<![\w+])(?:\+\s?)?\(?\d[\d\s().-]{5,24}\d(?!\w)/g;
const DATE_LIKE = /^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})(?:[ T]|$)/;

function isGroupedPhone(m: string): boolean {
  const digits = m.replace(/\D/g, '').length;
  if (digits < 7 || digits > 15) return false;
  if (m.startsWith('+')) return true;
  if (!/[\s().-]/.test(m)) return false; // a bare digit run: judged by isBarePhone
  return !DATE_LIKE.test(m);
}

// --- secret segments ----------------------------------------------------------------------

const SEGMENT = /[^/?#&=\s,;|]+/g;
const PLAIN_WORD = /^[a-z-]{1,15}$/;

function scrubSecrets(s: string, p: PathSecretPatterns): string {
  if (p.after.length === 0 && p.segments.length === 0 && !p.randomTokens) return s;
  let previous = '';
  return s.replace(SEGMENT, (seg) => {
    const secret =
      (p.after.length > 0 && p.after.includes(previous) && !PLAIN_WORD.test(seg)) ||
      (seg.length <= 256 && p.segments.some((r) => r.test(seg))) ||
      (p.randomTokens && isRandomToken(seg));
    previous = seg.toLowerCase();
    return secret && !seg.startsWith('[') ? '[secret]' : seg;
  });
}

/**
 * 24+ characters of `[A-Za-z0-9_-]` with upper case, lower case and digits whose same-class
 * runs are short on average (random base62/base64url averages ~1.6; CamelCase words ~4).
 */
function isRandomToken(seg: string): boolean {
  if (seg.length < 24 || !/^[A-Za-z0-9_-]+$/.test(seg)) return false;
  let upper = 0;
  let lower = 0;
  let digit = 0;
  let runs = 0;
  let prev = -1;
  for (let i = 0; i < seg.length; i++) {
    const c = seg.charCodeAt(i);
    const cls = c >= 0x41 && c <= 0x5a ? 0 : c >= 0x61 && c <= 0x7a ? 1 : c >= 0x30 && c <= 0x39 ? 2 : 3;
    if (cls === 0) upper++;
    else if (cls === 1) lower++;
    else if (cls === 2) digit++;
    if (cls !== prev) runs++;
    prev = cls;
  }
  return upper >= 2 && lower >= 2 && digit >= 1 && seg.length / runs < 2.5;
}
