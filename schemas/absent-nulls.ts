/**
 * Wire rule: a JSON `null` in a field of the event is the same as the field being absent.
 *
 * Segment's libraries send nulls for what they do not know: analytics.js (`@segment/analytics-next`
 * 1.84.3, `normalize()` of its Segment.io plugin: `json.userId = json.userId || user.id()`) sends
 * `"userId": null` for every visitor not yet identified, and a caller may pass null for any
 * optional field (`page(null, null)`, `timestamp: null`). The validators describe present values
 * only, so the edge drops these nulls before validating. Only the structure the schemas declare is cleaned:
 * the event, its `context`, `context.page` and `context.library` (and the batch envelope and its
 * `context`). Free-form objects (`properties`, `traits`, `integrations`, unknown context keys)
 * keep their nulls: there a null is a value the client chose, and the edge only reads numbers
 * from them.
 *
 * An event whose ids are all null therefore has no id and fails validation with the usual
 * "needs a userId or an anonymousId" reason.
 *
 * @example
 * ```ts
 * withoutNullFields({ type: 'track', event: 'x', anonymousId: 'a1', userId: null });
 * // -> { type: 'track', event: 'x', anonymousId: 'a1' }
 * ```
 */
export function withoutNullFields(event: unknown): unknown {
  return clean(event, 'event');
}

/** The batch envelope: its own fields and its `context`, and every event of `batch`. */
export function batchWithoutNullFields(body: Record<string, unknown>): Record<string, unknown> {
  const envelope = clean(body, 'event') as Record<string, unknown>;
  const batch = envelope.batch;
  if (!Array.isArray(batch)) return envelope;
  let events: unknown[] | undefined;
  for (let i = 0; i < batch.length; i++) {
    const before: unknown = batch[i];
    const after = clean(before, 'event');
    if (after !== before) {
      events ??= batch.slice();
      events[i] = after;
    }
  }
  return events === undefined ? envelope : { ...envelope, batch: events };
}

/** Which keys of a declared object hold declared objects in turn (their nulls mean absent too). */
type Nested = 'event' | 'context' | 'leaf';

function nestedOf(level: Nested, key: string): Nested | undefined {
  if (level === 'event') return key === 'context' ? 'context' : undefined;
  if (level === 'context') return key === 'page' || key === 'library' ? 'leaf' : undefined;
  return undefined;
}

/**
 * `value` without its null-valued keys (and those of its declared nested objects); the same
 * object when there is nothing to drop. Most events have no null, so the check walks the keys
 * with `for...in` (no key array is allocated: JSON.parse objects have no inherited enumerable
 * keys) and only then builds a copy; a nested object without nulls is shared, not copied.
 * A key named `__proto__` (refused earlier by the body parser anyway) is defined as a plain data
 * property, so it cannot reach a prototype.
 */
function clean(value: unknown, level: Nested): unknown {
  if (!isRecord(value) || !hasNull(value, level)) return value;
  const out: Record<string, unknown> = {};
  for (const key in value) {
    const v = value[key];
    if (v === null) continue;
    const inner = nestedOf(level, key);
    const kept = inner === undefined ? v : clean(v, inner);
    if (key === '__proto__') Object.defineProperty(out, key, { value: kept, enumerable: true, writable: true, configurable: true });
    else out[key] = kept;
  }
  return out;
}

function hasNull(obj: Record<string, unknown>, level: Nested): boolean {
  for (const key in obj) {
    const v = obj[key];
    if (v === null) return true;
    if (level !== 'leaf' && isRecord(v)) {
      const inner = nestedOf(level, key);
      if (inner !== undefined && hasNull(v, inner)) return true;
    }
  }
  return false;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
