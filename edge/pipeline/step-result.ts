import type { FieldError } from '../../schemas/validators.ts';

/**
 * What a pipeline step did with one event. Steps return values instead of throwing so a bad
 * event can never abort its batch, and tests can assert the exact outcome.
 * - `ok`: carry on with `value`;
 * - `reject`: the event is invalid; it is reported to the client and to the rejected sink;
 * - `drop`: the event is fine but must not be counted (a retried messageId, a bot under
 *   `BOT_POLICY=drop`); drops are counted per reason in the edge's stats.
 */
export type StepResult<T> =
  | { kind: 'ok'; value: T }
  | { kind: 'reject'; reason: RejectReason; errors: FieldError[] }
  | { kind: 'drop'; reason: DropReason };

export type RejectReason = 'invalid_schema' | 'event_too_large' | 'invalid_event_time';
export type DropReason = 'duplicate_message_id' | 'bot';
export const DROP_REASONS: readonly DropReason[] = ['duplicate_message_id', 'bot'];

export const ok = <T>(value: T): { kind: 'ok'; value: T } => ({ kind: 'ok', value });
export const reject = (reason: RejectReason, errors: FieldError[]): { kind: 'reject'; reason: RejectReason; errors: FieldError[] } => ({
  kind: 'reject',
  reason,
  errors,
});
export const drop = (reason: DropReason): { kind: 'drop'; reason: DropReason } => ({ kind: 'drop', reason });
