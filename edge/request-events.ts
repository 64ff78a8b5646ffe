import {
  splitBatchErrors,
  toFieldErrors,
  validateBatch,
  validateEvent,
  validateIdentify,
  validatePage,
  validateScreen,
  validateTrack,
  type EventContext,
  type FieldError,
  type SegmentEvent,
  type SegmentEventType,
  type TypedValidator,
} from '../schemas/validators.ts';
import { batchWithoutNullFields, withoutNullFields } from '../schemas/absent-nulls.ts';
import { rejection, type RequestRejection } from './errors.ts';
import { ok, reject, type Ok, type Reject } from './pipeline/step-result.ts';

/** What an endpoint accepts. */
export type IngestRoute = { kind: 'batch' } | { kind: 'single'; type: SegmentEventType } | { kind: 'collect' };

/** One event of a request with its validation outcome; `raw` is what the client sent. */
export interface CheckedEvent {
  index: number;
  raw: unknown;
  result: Ok<SegmentEvent> | Reject;
}

export interface RequestEvents {
  kind: 'ok';
  batchSentAt: string | undefined;
  batchContext: EventContext | undefined;
  events: CheckedEvent[];
}

const VALIDATORS: Record<SegmentEventType, TypedValidator<SegmentEvent>> = {
  track: validateTrack,
  page: validatePage,
  screen: validateScreen,
  identify: validateIdentify,
};

/**
 * Splits a parsed body into events and validates each with the generated validators, after
 * dropping the JSON nulls Segment's libraries send for absent fields (schemas/absent-nulls.ts).
 * The whole request is refused only when no event can be taken from it (not an object, no
 * `batch` array, too many events, a bad batch envelope, or an invalid single event);
 * otherwise each invalid event is reported on its own and the valid ones go on.
 */
export function extractEvents(
  value: unknown,
  route: IngestRoute,
  limits: { maxEventsPerBatch: number; maxEventBytes: number; bodyBytes: number; batchElementBytes: number[] | undefined },
): RequestEvents | RequestRejection {
  if (!isObject(value)) {
    return rejection(400, 'invalid_json', 'the body must be a JSON object: one event, or {"batch":[...]} on /v1/batch');
  }
  const isBatch = route.kind === 'batch' || (route.kind === 'collect' && value.batch != null);
  return isBatch ? batchEvents(batchWithoutNullFields(value), limits) : singleEvent(withoutNullFields(value) as Record<string, unknown>, route, limits);
}

function batchEvents(
  body: Record<string, unknown>,
  limits: { maxEventsPerBatch: number; maxEventBytes: number; batchElementBytes: number[] | undefined },
): RequestEvents | RequestRejection {
  const batch = body.batch;
  if (!Array.isArray(batch)) {
    return rejection(400, 'invalid_batch', 'the body must be {"batch":[ ...events ]}: "batch" is missing or not an array');
  }
  if (batch.length > limits.maxEventsPerBatch) {
    return rejection(413, 'too_many_events', `the batch has ${batch.length} events; the limit is ${limits.maxEventsPerBatch} (MAX_EVENTS_PER_BATCH): split it into smaller batches`);
  }
  const { envelope, byIndex } = validateBatch(body) ? { envelope: [], byIndex: new Map<number, FieldError[]>() } : splitBatchErrors(validateBatch.errors);
  if (envelope.length > 0) {
    return rejection(400, 'invalid_batch', `the batch envelope is invalid: ${envelope.map((e) => `${e.path || '/'} ${e.message}`).join('; ')}`, { errors: envelope });
  }
  // Sizes come from the raw-bytes scan; they are only missing for bodies that spell "batch"
  // with escapes, where re-serializing is the fallback.
  const sizes = limits.batchElementBytes?.length === batch.length ? limits.batchElementBytes : undefined;
  const events = batch.map((raw: unknown, index): CheckedEvent => {
    const bytes = sizes?.[index] ?? utf8Length(JSON.stringify(raw) ?? '');
    if (bytes > limits.maxEventBytes) return { index, raw, result: tooLarge(bytes, limits.maxEventBytes) };
    const errors = byIndex.get(index);
    return { index, raw, result: errors ? reject('invalid_schema', errors) : ok(raw as SegmentEvent) };
  });
  return {
    kind: 'ok',
    batchSentAt: typeof body.sentAt === 'string' ? body.sentAt : undefined,
    batchContext: isObject(body.context) ? (body.context as EventContext) : undefined,
    events,
  };
}

function singleEvent(
  body: Record<string, unknown>,
  route: IngestRoute,
  limits: { maxEventBytes: number; bodyBytes: number },
): RequestEvents | RequestRejection {
  if (limits.bodyBytes > limits.maxEventBytes) {
    return rejection(413, 'event_too_large', `the event is ${limits.bodyBytes} bytes; the limit is ${limits.maxEventBytes} (MAX_EVENT_BYTES): send fewer or shorter properties`);
  }
  let event: Record<string, unknown> = body;
  let validator = validateEvent;
  if (route.kind === 'single') {
    // Segment's typed endpoints let the path name the type; a contradicting type is an error.
    if (body.type === undefined) event = { ...body, type: route.type };
    else if (body.type !== route.type) {
      return rejection(400, 'invalid_event', `this endpoint takes ${route.type} events; the body says type ${JSON.stringify(body.type)}: post it to /v1/${String(body.type)} or /v1/batch`, {
        errors: [{ path: '/type', message: `must be "${route.type}" on /v1/${route.type}` }],
      });
    }
    validator = VALIDATORS[route.type];
  }
  const result: Ok<SegmentEvent> | Reject = validator(event) ? ok(event as SegmentEvent) : reject('invalid_schema', toFieldErrors(validator.errors));
  return { kind: 'ok', batchSentAt: undefined, batchContext: undefined, events: [{ index: 0, raw: event, result }] };
}

function tooLarge(bytes: number, max: number): Reject {
  return reject('event_too_large', [{ path: '', message: `event is ${bytes} bytes; the limit is ${max} (MAX_EVENT_BYTES): send fewer or shorter properties` }]);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const encoder = new TextEncoder();
function utf8Length(s: string): number {
  return encoder.encode(s).byteLength;
}
