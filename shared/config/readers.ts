/**
 * The one set of readers: each kind of setting (kinds.ts) is parsed by one rule, whichever
 * process reads it. Messages name the variable and the accepted form; a secret's value is never
 * quoted. Readers take a flat string map (`process.env`, wrangler vars, `Deno.env.toObject()`)
 * and push messages onto `errors`.
 */
import type { EnumSetting, Named, ProcessName, TextSetting, WholeSetting } from './kinds.ts';

export type Env = Readonly<Record<string, string | undefined>>;

/** The trimmed value, undefined when unset or blank. */
export function readTrimmed(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined) return undefined;
  const value = raw.trim();
  return value === '' ? undefined : value;
}

/**
 * A whole number: plain decimal digits only — no sign, exponent (`6e4`), fraction, `0x` or `_` —
 * from the setting's min to max (and dividing `divides.of` when the setting says so). Unset or
 * blank gives the default (`fallback` when the default is computed, e.g. from another setting).
 *
 * @example
 * readWhole({ WINDOW_SIZE_MS: '6e4' }, SETTINGS.WINDOW_SIZE_MS, errors);
 * // 60000 (the default), errors: ['WINDOW_SIZE_MS="6e4" is not valid: expected a whole number from 1000 to 86400000 (default 60000); write 60000 in plain digits']
 */
export function readWhole(env: Env, s: Named<WholeSetting>, errors: string[], o: { process?: ProcessName; fallback?: number } = {}): number {
  const fallback = o.fallback ?? (o.process !== undefined ? s.defaultFor?.[o.process] : undefined) ?? s.default;
  const raw = readTrimmed(env, s.name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < s.min || value > s.max) {
    // Number() reads `6e4`, `0x10`, `+5` and ` 1e3` too; the rule is digits only, so say how to write it.
    const hint = !/^\d+$/.test(raw) && Number.isSafeInteger(value) && value >= s.min && value <= s.max ? `; write ${value} in plain digits` : '';
    errors.push(`${s.name}=${JSON.stringify(raw)} is not valid: expected a whole number from ${s.min} to ${s.max} (default ${fallback})${hint}`);
    return fallback;
  }
  if (s.divides !== undefined && s.divides.of % value !== 0) {
    errors.push(`${s.name}=${value} must divide ${s.divides.of === 86_400_000 ? 'a day' : s.divides.of} evenly (e.g. ${s.divides.examples}) ${s.divides.why}`);
    return value;
  }
  return value;
}

/**
 * One of the setting's values, without regard to case (`Static`, `KEEP`), or one of its aliases
 * (`development` for `dev`). `supported` narrows the values a process accepts (the Workers edge
 * takes no `clickhouse` salts); the message then says "not valid here". Unset or blank gives the
 * process's default.
 */
export function readEnum<V extends string>(env: Env, s: Named<EnumSetting<V>>, errors: string[], o: { process?: ProcessName; supported?: readonly V[] } = {}): V {
  const fallback = (o.process !== undefined ? s.defaultFor?.[o.process] : undefined) ?? s.default;
  const raw = readTrimmed(env, s.name);
  if (raw === undefined) return fallback;
  const allowed = o.supported === undefined ? s.values : o.supported.map((v) => s.values.find((x) => x.value === v) ?? { value: v });
  const lower = raw.toLowerCase();
  const found = allowed.find((x) => x.value.toLowerCase() === lower)?.value ?? aliasOf(s, lower, allowed);
  if (found !== undefined) return found;
  const choices = allowed.map((x) => (x.meaning === undefined ? `"${x.value}"` : `"${x.value}" (${x.meaning})`));
  const list = choices.length <= 1 ? choices.join('') : `${choices.slice(0, -1).join(', ')} or ${choices[choices.length - 1] ?? ''}`;
  errors.push(`${s.name}=${JSON.stringify(raw)} is not valid${o.supported === undefined ? '' : ' here'}: use ${list}`);
  return fallback;
}

function aliasOf<V extends string>(s: EnumSetting<V>, lower: string, allowed: readonly { value: V }[]): V | undefined {
  for (const [alias, value] of Object.entries(s.aliases ?? {}) as [string, V][]) {
    if (alias.toLowerCase() === lower && allowed.some((x) => x.value === value)) return value;
  }
  return undefined;
}

/**
 * Text: trimmed (untrimmed for `raw` settings), checked against the setting's pattern when it
 * has one; unset or blank gives the default (undefined when it has none). A secret is never
 * quoted in the message.
 */
export function readText(env: Env, s: Named<TextSetting>, errors: string[]): string | undefined {
  const value = s.raw === true ? (env[s.name] === '' ? undefined : env[s.name]) : readTrimmed(env, s.name);
  if (value === undefined) return s.default;
  if (s.pattern !== undefined && !s.pattern.test(value)) {
    const shown = s.secret === true ? '' : `=${JSON.stringify(value.slice(0, 260))}`;
    errors.push(`${s.name}${shown} ${s.problem ?? 'is not valid'}${s.form === undefined ? '' : `: ${s.form}`}`);
    return s.default;
  }
  return value;
}

/** An address to listen on (`host` settings): `[::1]` is given as `::1`, the way servers take it. */
export function readListenHost(env: Env, s: Named<TextSetting>, errors: string[]): string {
  const value = readText(env, s, errors) ?? s.default ?? '127.0.0.1';
  return value.replace(/^\[(.*)\]$/, '$1');
}
