/**
 * Property tests of the edge's privacy promise (issue #10, deliverable 6), driven in-process:
 * PII generated into every field of an event never reaches the bytes produced (envelopes and
 * rejected records), and benign ids in the same fields survive verbatim.
 */
import fc from 'fast-check';
import { isValidPhoneNumber } from 'libphonenumber-js/min';
import { describe, expect, it } from 'vitest';
import { redactRejectedRecord } from '../../../shared/privacy/redact.ts';
import { makeEdge, send, T0 } from './helpers.ts';

interface Sample {
  /** As written into the event. */
  text: string;
  /** Substrings that must not appear in any byte produced. */
  needles: string[];
}

const lower = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz'), minLength: min, maxLength: max });
const digits = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: n, maxLength: n });

function luhnComplete(partial: string): string {
  let sum = 0;
  for (let i = partial.length - 1, double = true; i >= 0; i--, double = !double) {
    let d = Number(partial[i]);
    if (double && (d *= 2) > 9) d -= 9;
    sum += d;
  }
  return partial + String((10 - (sum % 10)) % 10);
}

const card: fc.Arbitrary<Sample> = fc
  .record({ prefix: fc.constantFrom('4', '51', '55', '2221', '34', '37', '6011', '65', '3528', '62'), length: fc.integer({ min: 13, max: 19 }), body: digits(19), sep: fc.constantFrom('', ' ', '-') })
  .map(({ prefix, length, body, sep }) => {
    const number = luhnComplete((prefix + body).slice(0, length - 1));
    const text = sep === '' ? number : (number.match(/.{1,4}/g) as string[]).join(sep);
    return { text, needles: [text, number] };
  });

const email: fc.Arbitrary<Sample> = fc
  .record({
    local: lower(7, 10),
    host: lower(6, 9),
    idn: fc.boolean(),
    tld: fc.constantFrom('com', 'org', 'de', 'co.uk', 'photography'),
    form: fc.constantFrom('@', '(at)', '[at]', ' @ ', '%40', '%2540', 'localhost'),
  })
  .map(({ local, host, idn, tld, form }) => {
    const l = idn ? `å${local}` : local;
    const h = idn ? `${host}ä` : host;
    const text = form === 'localhost' ? `${l}@${h}` : `${l}${form}${h}.${tld}`;
    return { text, needles: [local, host] };
  });

const phone: fc.Arbitrary<Sample> = fc
  .record({ area: fc.constantFrom('415', '212', '650', '202', '312', '617'), exchange: fc.integer({ min: 200, max: 999 }), line: digits(4), form: fc.integer({ min: 0, max: 5 }), mobile: digits(8) })
  .filter(({ area, exchange, line }) => isValidPhoneNumber(`${area}${exchange}${line}`, 'US'))
  .map(({ area, exchange, line, form, mobile }) => {
    const national = `${area}${exchange}${line}`;
    const text = [national, `1${national}`, `(${area}) ${exchange}-${line}`, `${area}-${exchange}-${line}`, `+1 ${area} ${exchange} ${line}`, `+49 151 ${mobile}`][form] as string;
    return { text, needles: [text, form === 5 ? `151 ${mobile}` : national] };
  });

// A random token that mixes classes the way generated tokens do (never a CamelCase word).
const randomToken = fc
  .array(fc.tuple(fc.constantFrom(...'ABCDEFGHJKLMNPQRSTUVWXYZ'), fc.constantFrom(...'abcdefghijkmnopqrstuvwxyz'), fc.constantFrom(...'23456789')), { minLength: 8, maxLength: 12 })
  .map((triples) => triples.map((t) => t.join('')).join(''));

const secret: fc.Arbitrary<Sample> = fc
  .oneof(
    fc.tuple(fc.constantFrom('tok', 'sk_live', 'whsec'), randomToken).map(([p, t]) => ({ text: `${p}_${t.slice(0, 14)}`, needles: [t.slice(0, 14)] })),
    randomToken.map((t) => ({ text: t, needles: [t] })),
  );

const pii = fc.oneof(card, email, phone, secret);

type Field = 'event' | 'path' | 'utm' | 'key' | 'messageId' | 'reset';
const field = fc.constantFrom<Field>('event', 'path', 'utm', 'key', 'messageId', 'reset');

let counter = 0;

/** One valid and one invalid event carrying the samples in their fields. */
function eventsWith(items: Array<{ sample: Sample; field: Field }>): Record<string, unknown>[] {
  const words: string[] = [];
  const segments: string[] = [];
  const keys: Record<string, number> = {};
  let utm = 'news';
  let messageId = `m-${++counter}`;
  for (const { sample, field } of items) {
    if (field === 'event') words.push(sample.text);
    else if (field === 'path') segments.push(sample.text);
    else if (field === 'reset') segments.push('reset', sample.text.replaceAll(' ', '').replaceAll('/', ''));
    else if (field === 'utm') utm = sample.text;
    else if (field === 'key') keys[`k ${sample.text}`] = 1;
    else messageId = sample.text;
  }
  const event = `Paid ${words.join(' and ')} now`;
  const path = `/p/${segments.map((s) => s.replaceAll('/', '')).join('/')}?utm_source=${encodeURIComponent(utm)}`;
  const base = { type: 'track', userId: 'u1', timestamp: new Date(T0).toISOString(), context: { page: { path } } };
  return [
    { ...base, event, messageId: `${messageId}-valid`, properties: keys },
    { ...base, event: 5, messageId, properties: { ...keys, event_name: event } },
  ];
}

async function produced(events: Record<string, unknown>[]): Promise<{ text: string; records: unknown[] }> {
  const edge = makeEdge({ DIMENSIONS: 'path', PATH_QUERY_ALLOWLIST: 'utm_source' });
  const res = await send(edge, '/v1/batch', { batch: events }, { writeKey: 'wk_a' });
  expect(res.status).toBe(200);
  await edge.flusher.flushNow();
  expect(edge.partials.messages.length).toBeGreaterThan(0);
  expect(edge.rejected.records).toHaveLength(1);
  return { text: `${edge.partials.text()}\n${edge.rejected.text()}`, records: edge.rejected.records };
}

describe('privacy properties of the bytes the edge produces', () => {
  it('no generated card number, e-mail address, phone number or secret reaches them, in any field', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.record({ sample: pii, field }), { minLength: 1, maxLength: 6, selector: (x) => x.field }), async (items) => {
        const { text, records } = await produced(eventsWith(items));
        for (const { sample } of items) for (const needle of sample.needles) expect(text, `leaked ${needle}`).not.toContain(needle);
        // What the edge produced passes the gateway's redaction unchanged.
        for (const r of records) expect(redactRejectedRecord(r)).toEqual(r);
      }),
      { numRuns: 80 },
    );
  });

  it('the gateway changes nothing an edge redacted: redaction is idempotent on any record', () => {
    const text = fc.oneof(fc.string(), pii.map((p) => p.text), fc.constantFrom('[string:3]', '[+2 more]', 'userPseudonym', '0123456789abcdef'));
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, text, fc.double(), fc.boolean(), fc.constant(null), fc.array(tie('v'), { maxLength: 10 }), fc.dictionary(text, tie('v'), { maxKeys: 5 })),
    })).v;
    const record = fc.record({
      site: text,
      received_at: fc.oneof(text, fc.constant('2026-11-01T12:00:00.000Z')),
      index: fc.oneof(fc.nat(), fc.double()),
      message_id: fc.oneof(text, fc.constant(null)),
      errors: fc.array(fc.record({ path: text, message: text }), { maxLength: 3 }),
      event: fc.oneof(value, fc.dictionary(fc.constantFrom('type', 'event', 'messageId', 'timestamp', 'userId', 'userPseudonym', 'context', 'properties'), value)),
    });
    fc.assert(
      fc.property(record, fc.option(fc.constant('0123456789abcdef'), { nil: undefined }), (r, pseudonym) => {
        const once = redactRejectedRecord(r, { userPseudonym: pseudonym });
        expect(redactRejectedRecord(JSON.parse(JSON.stringify(once)))).toEqual(once);
      }),
      { numRuns: 300 },
    );
  });

  const uuidAllDigits = fc.tuple(digits(8), digits(4), digits(4), digits(4), digits(12)).map((g) => g.join('-'));
  const hexId = fc.constantFrom(24, 32, 40).chain((n) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n }));
  const orderNumber = fc.tuple(fc.constantFrom('ORD-', 'order-', 'INV_', ''), fc.integer({ min: 10_000, max: 999_999_999 })).map(([p, n]) => `${p}${n}`);
  const timestamp = fc.oneof(fc.integer({ min: 1_000_000_000_000, max: 1_999_999_999_999 }), fc.integer({ min: 1_000_000_000, max: 1_999_999_999 })).map(String);
  const date = fc.date({ min: new Date('1990-01-01'), max: new Date('2090-01-01'), noInvalidDate: true }).chain((d) => fc.constantFrom(d.toISOString(), d.toISOString().slice(0, 10)));
  const semver = fc.tuple(fc.nat(30), fc.nat(99), fc.nat(999), fc.constantFrom('', '-beta.1', '-rc.2')).map(([a, b, c, pre]) => `v${a}.${b}.${c}${pre}`);
  const benign = fc.oneof(fc.uuid(), uuidAllDigits, hexId, orderNumber, timestamp, date, semver);

  it('benign ids (UUIDs, all-digit UUIDs, hex ids, order numbers, timestamps, dates, semver) survive in every field', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.record({ id: benign, field: fc.constantFrom<Field>('event', 'path', 'utm', 'key', 'messageId') }), { minLength: 1, maxLength: 5, selector: (x) => x.field }), async (items) => {
        const { text } = await produced(eventsWith(items.map(({ id, field }) => ({ sample: { text: id, needles: [] }, field }))));
        for (const { id, field } of items) {
          const encoded = new URLSearchParams({ v: id }).toString().slice(2);
          expect(text.includes(id) || (field === 'utm' && text.includes(encoded)), `mangled ${id} in ${field}`).toBe(true);
        }
      }),
      { numRuns: 80 },
    );
  });
});
