/**
 * Unknown variables that look like a misspelt setting (`WINDOW_SIZE`, `DEDUP_WINDOW`,
 * `TRIBUTARY_WRITE_KEY`): warned about once at start-up, since an unknown name is otherwise
 * silently ignored and its default used. Only names shaped like ours (upper case, with an
 * underscore) that are close to a known one count: PATH, HOME, JAVA_HOME never do.
 */
import type { Env } from './readers.ts';
import { ALL_SETTINGS } from './settings.ts';

export interface NearMiss {
  /** The variable that is set but read by nothing. */
  name: string;
  /** The setting it is probably meant as. */
  probably: string;
}

/** Variables of the environment, not ours, that a near miss must never be reported for. */
const FOREIGN = new Set(['JAVA_HOME', 'NODE_OPTIONS', 'NODE_ENV', 'LC_ALL', 'XDG_CACHE_HOME', 'XDG_CONFIG_HOME', 'XDG_DATA_HOME', 'XDG_RUNTIME_DIR']);
const OUR_SHAPE = /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$/;

/**
 * Names in `env` that are not settings but within a small edit distance of one (1 for names up
 * to 8 characters, 2 beyond), or a leading part of one that stops at an underscore
 * (`DEDUP_WINDOW` of `DEDUP_WINDOW_MS`). Sorted by name; each names its closest setting.
 *
 * @example
 * nearMisses({ WINDOW_SIZE: '60000', PATH: '/usr/bin' }); // [{ name: 'WINDOW_SIZE', probably: 'WINDOW_SIZE_MS' }]
 */
export function nearMisses(env: Env, known: readonly string[] = ALL_SETTINGS.map((s) => s.name)): NearMiss[] {
  const knownSet = new Set(known);
  const out: NearMiss[] = [];
  for (const name of Object.keys(env).sort()) {
    if (knownSet.has(name) || FOREIGN.has(name) || !OUR_SHAPE.test(name)) continue;
    const probably = closest(name, known);
    if (probably !== undefined) out.push({ name, probably });
  }
  return out;
}

function closest(name: string, known: readonly string[]): string | undefined {
  const limit = name.length <= 8 ? 1 : 2;
  let best: { name: string; distance: number } | undefined;
  for (const k of known) {
    const prefix = name.length >= 8 && k.startsWith(`${name}_`);
    const distance = prefix ? 0.5 : editDistance(name, k, limit);
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { name: k, distance };
  }
  return best?.name;
}

/** Levenshtein distance, stopping early once every path is beyond `limit` (then `limit + 1`). */
export function editDistance(a: string, b: string, limit = Number.MAX_SAFE_INTEGER): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const value = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
      current.push(value);
      rowMin = Math.min(rowMin, value);
    }
    if (rowMin > limit) return limit + 1;
    previous = current;
  }
  return previous[b.length] ?? limit + 1;
}

/** One structured warning per near miss (an event name and fields, for a JSON log line). */
export function nearMissWarnings(env: Env): { event: 'unknown_setting'; variable: string; probably: string; message: string }[] {
  return nearMisses(env).map((m) => ({
    event: 'unknown_setting',
    variable: m.name,
    probably: m.probably,
    message: `${m.name} is not a Tributary setting and is ignored; did you mean ${m.probably}? (README.md "Configuration")`,
  }));
}
