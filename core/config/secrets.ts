import type { Env } from './env.ts';

/** Variables whose values (or parts of them) are credentials. */
const SECRET_VARIABLES = ['GATEWAY_SIGNING_KEYS', 'GATEWAY_SIGNING_KEY', 'PSEUDONYM_SALT', 'CLICKHOUSE_PASSWORD', 'TRIBUTARY_WRITE_KEYS', 'QUERY_READ_KEYS', 'METRICS_TOKEN', 'KAFKA_SASL_PASSWORD'] as const;

/** Shorter fragments are not masked: they would mangle ordinary words of a message. */
const MIN_MASKED_LENGTH = 6;

/**
 * Every text a secret variable holds, whole and split at `,` and `:` (list entries, the secret
 * after an edge id), longest first. Messages are written to never quote these; this is the
 * second line of defence for text we do not write ourselves (errors of libraries).
 */
export function secretValues(env: Env): string[] {
  const values = new Set<string>();
  for (const name of SECRET_VARIABLES) {
    const raw = env[name];
    if (raw === undefined) continue;
    values.add(raw.trim());
    for (const entry of raw.split(',')) {
      values.add(entry.trim());
      const colon = entry.indexOf(':');
      if (colon >= 0) {
        values.add(entry.slice(0, colon).trim());
        values.add(entry.slice(colon + 1).trim());
      }
    }
  }
  return [...values].filter((v) => v.length >= MIN_MASKED_LENGTH).sort((a, b) => b.length - a.length);
}

/** `text` with every occurrence of a secret value replaced by `[redacted]`. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('[redacted]');
  return out;
}
