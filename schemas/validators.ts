/**
 * Typed face of the build-time generated validators (`npm run build:schemas` writes
 * `schemas/generated/validators.js`). Nothing here compiles schemas at run time, so this
 * module is safe in Cloudflare Workers, Node and Deno.
 *
 * @example
 * ```ts
 * import { validateTrack, toFieldErrors } from '../schemas/validators.ts';
 * if (!validateTrack(body)) console.log(toFieldErrors(validateTrack.errors));
 * ```
 */
import * as generated from './generated/validators.js';
import type { GeneratedValidationError } from './generated/validators.js';
import type { BatchBody, IdentifyEvent, PageEvent, ScreenEvent, SegmentEvent, TrackEvent } from './event-types.ts';

export type { GeneratedValidationError } from './generated/validators.js';
export type * from './event-types.ts';

/** A generated validator narrowed to the type its schema describes; `errors` is set after a failed call. */
export interface TypedValidator<T> {
  (data: unknown): data is T;
  errors?: GeneratedValidationError[] | null;
}

export const validateTrack = generated.validateTrack as TypedValidator<TrackEvent>;
export const validatePage = generated.validatePage as TypedValidator<PageEvent>;
export const validateScreen = generated.validateScreen as TypedValidator<ScreenEvent>;
export const validateIdentify = generated.validateIdentify as TypedValidator<IdentifyEvent>;
/** Any single event, dispatched on `type`. */
export const validateEvent = generated.validateEvent as TypedValidator<SegmentEvent>;
/** A whole batch, including every event in it; see {@link splitBatchErrors}. */
export const validateBatch = generated.validateBatch as TypedValidator<BatchBody>;

/** One problem with one field: `path` is a JSON pointer into the event (`''` = the event itself). */
export interface FieldError {
  path: string;
  message: string;
}

const IDENTITY_ANYOF = '/identity/anyOf';

/**
 * Turns Ajv errors into short `{ path, message }` pairs a developer can act on: a missing
 * property points at the property itself, the userId/anonymousId alternative is one message,
 * and Ajv's bookkeeping errors (`if`/`then` dispatch) are dropped.
 */
export function toFieldErrors(errors: readonly GeneratedValidationError[] | null | undefined, stripPrefix = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const e of errors ?? []) {
    if (e.keyword === 'if') continue;
    if (e.schemaPath.includes(IDENTITY_ANYOF + '/')) continue;
    const base = e.instancePath.startsWith(stripPrefix) ? e.instancePath.slice(stripPrefix.length) : e.instancePath;
    if (e.schemaPath.endsWith(IDENTITY_ANYOF)) {
      out.push({ path: base, message: 'needs a userId or an anonymousId (a non-empty string or a number; null counts as absent)' });
    } else if (e.keyword === 'required' && typeof e.params.missingProperty === 'string') {
      out.push({ path: `${base}/${escapePointer(e.params.missingProperty)}`, message: 'is required' });
    } else if (e.keyword === 'enum' && base === '/type') {
      out.push({ path: base, message: 'must be one of track, page, screen, identify' });
    } else if (e.keyword === 'format') {
      out.push({ path: base, message: 'must be an RFC 3339 date-time such as 2024-05-01T12:00:00.000Z' });
    } else {
      out.push({ path: base, message: e.message ?? `fails ${e.keyword}` });
    }
  }
  // The per-type branches of the event schema can each report the same problem (a missing
  // `type` fails every branch): report it once.
  const seen = new Set<string>();
  return out.filter((e) => {
    const key = `${e.path}\u0000${e.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Splits the errors of {@link validateBatch} into errors of the batch itself (which make the
 * whole request unusable) and errors of each event, keyed by the event's index, with paths
 * relative to the event.
 */
export function splitBatchErrors(errors: readonly GeneratedValidationError[] | null | undefined): {
  envelope: FieldError[];
  byIndex: Map<number, FieldError[]>;
} {
  const envelope: GeneratedValidationError[] = [];
  const grouped = new Map<number, GeneratedValidationError[]>();
  for (const e of errors ?? []) {
    const m = /^\/batch\/(\d+)(?=\/|$)/.exec(e.instancePath);
    if (m === null) {
      envelope.push(e);
      continue;
    }
    const index = Number(m[1]);
    const list = grouped.get(index);
    if (list === undefined) grouped.set(index, [e]);
    else list.push(e);
  }
  const byIndex = new Map<number, FieldError[]>();
  for (const [index, list] of grouped) {
    const fieldErrors = toFieldErrors(list, `/batch/${index}`);
    if (fieldErrors.length > 0) byIndex.set(index, fieldErrors);
  }
  return { envelope: toFieldErrors(envelope), byIndex };
}

function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}
