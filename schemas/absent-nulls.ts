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
  return clean(event, EVENT_NESTED);
}

/** The batch envelope: its own fields and its `context`, and every event of `batch`. */
export function batchWithoutNullFields(body: Record<string, unknown>): Record<string, unknown> {
  const envelope = clean(body, EVENT_NESTED) as Record<string, unknown>;
  const batch = envelope.batch;
  if (!Array.isArray(batch)) return envelope;
  let events: unknown[] | undefined;
  for (let i = 0; i < batch.length; i++) {
    const before: unknown = batch[i];
    const after = clean(before, EVENT_NESTED);
    if (after !== before) {
      events ??= batch.slice();
      events[i] = after;
    }
  }
  return events === undefined ? envelope : { ...envelope, batch: events };
}

/** For each object the schemas declare: which of its keys hold declared objects in turn. */
interface Nested {
  readonly [key: string]: Nested | undefined;
}
const LEAF: Nested = {};
const CONTEXT_NESTED: Nested = { page: LEAF, library: LEAF };
const EVENT_NESTED: Nested = { context: CONTEXT_NESTED };

/**
 * `value` without its null-valued keys (and those of its declared nested objects); the same
 * object when there is nothing to drop, so events without nulls cost one pass over their keys.
 * Copies are built with `Object.fromEntries`, which defines keys as data properties: a key such
 * as `__proto__` (refused earlier by the body parser anyway) cannot reach a prototype.
 */
function clean(value: unknown, nested: Nested): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const obj = value as Record<string, unknown>;
  let changed = false;
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    if (v === null) {
      changed = true;
      break;
    }
    const inner = Object.hasOwn(nested, key) ? nested[key] : undefined;
    if (inner !== undefined && clean(v, inner) !== v) {
      changed = true;
      break;
    }
  }
  if (!changed) return value;
  const entries: Array<[string, unknown]> = [];
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    if (v === null) continue;
    const inner = Object.hasOwn(nested, key) ? nested[key] : undefined;
    entries.push([key, inner !== undefined ? clean(v, inner) : v]);
  }
  return Object.fromEntries(entries);
}
