/**
 * The kinds of setting the configuration schema (settings.ts) is made of. Runtime-neutral: no
 * `process`, no `node:*`; the Node CLI, the Workers and the Deno entries all read through it.
 */

/** Every process that reads settings; `start` is `tributary start` (the whole local pipeline). */
export const PROCESSES = ['edge-node', 'edge-workers', 'edge-deno', 'gateway', 'aggregator', 'query-api', 'start', 'migrate', 'reset', 'local-kafka'] as const;
export type ProcessName = (typeof PROCESSES)[number];

/** Processes that run the edge collector code (edge/config.ts). */
export const EDGES: readonly ProcessName[] = ['edge-node', 'edge-workers', 'edge-deno', 'start'];
/** Processes that read the central settings (core/config/core-config.ts). */
export const CENTRAL: readonly ProcessName[] = ['gateway', 'aggregator', 'query-api', 'start', 'migrate', 'reset', 'edge-node'];

export interface SettingBase {
  /** Processes that read this setting. */
  processes: readonly ProcessName[];
  /** Never printed: not in messages, not in logs, masked in text we do not write ourselves. */
  secret?: boolean;
  /**
   * The meaning column of README.md's configuration table. A setting documented in another
   * setting's row (`sharesRowWith`) may leave it out: that row's text covers both.
   */
  doc?: string;
  /** The README default column when the default alone does not say it (`unset: ...`, `512 KiB`). */
  defaultDoc?: string;
  /** Documented in the README row of that setting (names listed together, defaults joined). */
  sharesRowWith?: string;
}

/** A whole number: plain decimal digits only (no sign, no exponent, no fraction), from `min` to `max`. */
export interface WholeSetting extends SettingBase {
  kind: 'whole';
  default: number;
  /** Another default for some processes. */
  defaultFor?: Partial<Record<ProcessName, number>>;
  min: number;
  max: number;
  /** The value must divide `of` evenly (a window size divides a day); `why` ends the message. */
  divides?: { of: number; why: string; examples: string };
}

/** One of `values`, compared without regard to case; `aliases` map other spellings to a value. */
export interface EnumSetting<V extends string = string> extends SettingBase {
  kind: 'enum';
  values: readonly { value: V; meaning?: string }[];
  aliases?: Readonly<Record<string, V>>;
  default: V;
  defaultFor?: Partial<Record<ProcessName, V>>;
}

/**
 * Text: `string` (optionally a pattern), `list` (comma-separated; the entries are parsed by the
 * setting's own parser, named in `parser`), `url`, `host` (an address to listen on), `path` (a
 * directory). Text is trimmed unless `raw` (secrets: every character counts).
 */
export interface TextSetting extends SettingBase {
  kind: 'string' | 'list' | 'url' | 'host' | 'path';
  default?: string;
  pattern?: RegExp;
  /** Message after `NAME="value" ` when the pattern does not match: `problem: form`. */
  problem?: string;
  form?: string;
  /** The value as given, untrimmed (secrets whose every character counts). */
  raw?: boolean;
  /** Where the entries of a `list` are parsed (one parser per setting). */
  parser?: string;
}

export type Setting = WholeSetting | EnumSetting | TextSetting;

/** A setting with its name, as the catalogue hands it out. */
export type Named<S extends Setting = Setting> = S & { readonly name: string };

export function whole(s: Omit<WholeSetting, 'kind'>): WholeSetting {
  return { kind: 'whole', ...s };
}

export function oneOf<const V extends string>(
  s: SettingBase & {
    values: readonly { value: V; meaning?: string }[];
    default: NoInfer<V>;
    aliases?: Readonly<Record<string, NoInfer<V>>>;
    defaultFor?: Partial<Record<ProcessName, NoInfer<V>>>;
  },
): EnumSetting<V> {
  return { kind: 'enum', ...s };
}

export function text(kind: TextSetting['kind'], s: Omit<TextSetting, 'kind'>): TextSetting {
  return { kind, ...s };
}

/** Gives every entry of the catalogue its own key as `name`. */
export function defineSettings<T extends Record<string, Setting>>(settings: T): { readonly [K in keyof T]: T[K] & { readonly name: K } } {
  const out: Record<string, Setting & { name: string }> = {};
  for (const [name, s] of Object.entries(settings)) out[name] = { ...s, name };
  return out as { readonly [K in keyof T]: T[K] & { readonly name: K } };
}
