/**
 * `SALT_SOURCE` of an edge entry: where its epoch salts come from (docs/EDGE.md "Salt epochs").
 * `gateway`: random salts from the central store, served by `tributary gateway`; `static`:
 * derived from `PSEUDONYM_SALT`; `clickhouse`: read from the store directly (Node only).
 */
export type SaltSource = 'static' | 'gateway' | 'clickhouse';

const MEANING: Record<SaltSource, string> = {
  gateway: 'random salts served by `tributary gateway` at GATEWAY_URL',
  static: 'derived from PSEUDONYM_SALT',
  clickhouse: 'random salts read from ClickHouse',
};

/**
 * Reads `SALT_SOURCE` for an entry that supports `supported`, defaulting to `fallback` when unset.
 *
 * @example
 * ```ts
 * const source = parseSaltSource(env, { supported: ['gateway', 'static'], fallback: 'gateway' });
 * if (!source.ok) errors.push(source.error);
 * ```
 */
export function parseSaltSource(
  env: Record<string, string | undefined>,
  o: { supported: readonly SaltSource[]; fallback: SaltSource },
): { ok: true; source: SaltSource } | { ok: false; error: string } {
  const raw = env.SALT_SOURCE?.trim() ?? '';
  if (raw === '') return { ok: true, source: o.fallback };
  const found = o.supported.find((s) => s === raw.toLowerCase());
  if (found !== undefined) return { ok: true, source: found };
  const choices = o.supported.map((s) => `"${s}" (${MEANING[s]})`).join(' or ');
  return { ok: false, error: `SALT_SOURCE=${JSON.stringify(raw)} is not valid here: use ${choices}` };
}
