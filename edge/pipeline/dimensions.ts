import type { DimensionName } from '../config.ts';
import type { EventContext, SegmentEvent } from '../../schemas/validators.ts';

/** Value recorded for a configured dimension the event does not carry. */
export const UNKNOWN = 'unknown';
const MAX_PATH_CHARS = 512;

/** The event name rows are counted under: track's `event`, else `$page`, `$screen`, `$identify`. */
export function eventName(e: SegmentEvent): string {
  return e.type === 'track' ? e.event : `$${e.type}`;
}

/**
 * The numeric value an event contributes to sum/min/max/quantiles: `properties.value`, else
 * `properties.revenue`, when it is a finite number.
 */
export function numericValue(e: SegmentEvent): number | undefined {
  if (e.type === 'identify' || e.properties === undefined) return undefined;
  for (const field of ['value', 'revenue'] as const) {
    const v = e.properties[field];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return undefined;
}

/**
 * The configured dimensions of one event as `[name, value]` pairs sorted by name (the
 * envelope's order). `country` comes from the entry (a trusted proxy header or the platform),
 * never from the event body, which the client controls.
 */
export function extractDimensions(
  e: SegmentEvent,
  names: readonly DimensionName[],
  extra: { batchContext?: EventContext | undefined; country?: string | undefined },
): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const name of names) {
    if (name === 'path') out.push(['path', eventPath(e, extra.batchContext)]);
    else out.push(['country', normalizeCountry(extra.country)]);
  }
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

function eventPath(e: SegmentEvent, batchContext: EventContext | undefined): string {
  const page = e.context?.page ?? batchContext?.page;
  const fromProps = e.type !== 'identify' ? e.properties?.path : undefined;
  const candidate = page?.path ?? (typeof fromProps === 'string' ? fromProps : undefined);
  if (candidate !== undefined) return normalizePath(candidate);
  const url = page?.url ?? (e.type !== 'identify' && typeof e.properties?.url === 'string' ? e.properties.url : undefined);
  if (url !== undefined) {
    try {
      return normalizePath(new URL(url).pathname);
    } catch {
      return UNKNOWN;
    }
  }
  return UNKNOWN;
}

/**
 * Query string and fragment are stripped: they carry tokens, emails and campaign ids, which
 * are both private and unbounded in cardinality.
 */
export function normalizePath(raw: string): string {
  let end = raw.length;
  const q = raw.indexOf('?');
  if (q >= 0) end = q;
  const h = raw.indexOf('#');
  if (h >= 0 && h < end) end = h;
  const path = raw.slice(0, Math.min(end, MAX_PATH_CHARS)).trim();
  if (path === '') return UNKNOWN;
  return path.startsWith('/') ? path : `/${path}`;
}

/** ISO 3166-1 alpha-2 codes (plus platform codes such as Cloudflare's XX/T1), upper-cased. */
export function normalizeCountry(raw: string | undefined): string {
  if (raw === undefined) return UNKNOWN;
  const v = raw.trim().toUpperCase();
  return /^[A-Z0-9]{2}$/.test(v) ? v : UNKNOWN;
}
