/**
 * Free-text scrubbing (DESIGN §3.6): e-mail addresses, IP addresses and phone numbers inside
 * strings that leave the edge (event names, paths and allowlisted query values, rejected-event
 * identifiers) are replaced by `[email]`, `[ip]` and `[phone]`.
 *
 * The rules err on the side of privacy but keep common analytics text intact:
 * - e-mail: `local@domain.tld`, also percent-encoded (`local%40domain.tld`);
 * - IP: dotted IPv4 (`203.0.113.7`) and IPv6 with at least three groups (`2001:db8::1`);
 * - phone: 7 to 15 digits written the way people write phone numbers: starting with `+`, or
 *   grouped by spaces, dots, dashes or parentheses (`+44 20 7946 0958`, `(555) 123-4567`,
 *   `555-1234`). Bare digit runs (`/orders/12345678`, epoch timestamps) and dates
 *   (`2024-05-01`, `01.05.2024`) are left alone: they are ids and times far more often than
 *   phone numbers. Digit groups separated by spaces (`100 200 300`) are scrubbed, a false
 *   positive accepted for privacy.
 */
const EMAIL = /[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/gi;
const IPV4 = /(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])/g;
const IPV6 = /(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])/g;
const PHONE = /(?<![\w+])(?:\+\s?)?\(?\d[\d\s().-]{5,24}\d(?!\w)/g;
const DATE_LIKE = /^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})(?:[ T]|$)/;

/** True when `s` may hold something {@link scrubText} replaces: the cheap pre-check of the hot path. */
function mayHoldPii(s: string): boolean {
  let digits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x40 /* @ */ || c === 0x25 /* % */ || c === 0x3a /* : */) return true;
    if (c >= 0x30 && c <= 0x39 && ++digits >= 4) return true;
  }
  return false;
}

/**
 * Replaces e-mail addresses, IP addresses and phone numbers in `s`. Strings without `@`, `%`,
 * `:` or at least four digits are returned as they are, without running a regular expression.
 *
 * @example
 * ```ts
 * scrubText('Signed up alice@example.com'); // 'Signed up [email]'
 * scrubText('call +1 (555) 123-4567');      // 'call [phone]'
 * ```
 */
export function scrubText(s: string): string {
  if (!mayHoldPii(s)) return s;
  return s
    .replace(EMAIL, '[email]')
    .replace(IPV4, '[ip]')
    .replace(IPV6, (m) => (isIpv6(m) ? '[ip]' : m))
    .replace(PHONE, (m) => (isPhone(m) ? '[phone]' : m));
}

function isIpv6(m: string): boolean {
  const groups = m.split(':').filter((g) => g !== '');
  // `12:30:45` is a time; a real address has more groups, or `::` with a hex letter or 3+ groups.
  if (groups.length >= 5) return true;
  return m.includes('::') && (groups.length >= 3 || /[a-f]/i.test(m));
}

function isPhone(m: string): boolean {
  const digits = m.replace(/\D/g, '').length;
  if (digits < 7 || digits > 15) return false;
  if (m.startsWith('+')) return true;
  if (!/[\s().-]/.test(m)) return false; // a bare digit run: an id or a timestamp
  return !DATE_LIKE.test(m);
}
