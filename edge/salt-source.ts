/**
 * `SALT_SOURCE` of an edge entry: where its epoch salts come from (docs/EDGE.md "Salt epochs").
 * `gateway`: random salts from the central store, served by `tributary gateway`; `static`:
 * derived from `PSEUDONYM_SALT`; `clickhouse`: read from the store directly (Node only).
 */
import { SETTINGS, readEnum, readTrimmed } from '../shared/config/index.ts';

export type SaltSource = 'static' | 'gateway' | 'clickhouse';

/**
 * Reads `SALT_SOURCE` (any case) for an entry that supports `supported`, defaulting to
 * `fallback` when unset. The values and their meanings are the schema's (shared/config).
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
  const errors: string[] = [];
  const source = readEnum(env, SETTINGS.SALT_SOURCE, errors, { supported: o.supported });
  if (errors[0] !== undefined) return { ok: false, error: errors[0] };
  return { ok: true, source: readTrimmed(env, 'SALT_SOURCE') === undefined ? o.fallback : source };
}
