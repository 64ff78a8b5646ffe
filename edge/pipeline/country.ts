import { UNKNOWN } from '../../shared/privacy/path.ts';

/** ISO 3166-1 alpha-2 codes (plus platform codes such as Cloudflare's XX/T1), upper-cased. */
export function normalizeCountry(raw: string | undefined): string {
  if (raw === undefined) return UNKNOWN;
  const v = raw.trim().toUpperCase();
  return /^[A-Z0-9]{2}$/.test(v) ? v : UNKNOWN;
}
