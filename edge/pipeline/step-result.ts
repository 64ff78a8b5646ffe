import type { FieldError } from '../../schemas/validators.ts';

/**
 * What a pipeline step did with one event. Steps return values instead of throwing so a bad
 * event can never abort its batch, and tests can assert the exact outcome.
 * - `ok`: carry on with `value`;
 * - `reject`: the event is invalid; it is reported to the client and to the rejected sink;
 * - `drop`: the event is fine but must not be counted (a retried messageId, a bot under
 *   `BOT_POLICY=drop`); drops are counted per reason in the edge's stats;
 * - `retry`: the request cannot be taken now and nothing of it was counted (a salt or the dedup
 *   store is unavailable, another process holds a messageId): answer 503 and let the client retry.
 */
export type StepResult<T> = Ok<T> | Reject | Drop | Retry;

export interface Ok<T> {
  kind: 'ok';
  value: T;
}
export interface Reject {
  kind: 'reject';
  reason: RejectReason;
  errors: FieldError[];
}
export interface Drop {
  kind: 'drop';
  reason: DropReason;
}

/**
 * The `retry` outcome. `salt_unavailable`: a pseudonym salt cannot be had now; `in_flight`:
 * another edge process holds one of the request's messageIds in an envelope not yet
 * acknowledged by Kafka; `dedup_unavailable`: the retry dedup store failed (logged
 * `dedup_store_failed`). `message` is the answer's, for the client.
 */
export interface Retry {
  kind: 'retry';
  reason: RetryReason;
  message: string;
}

export type RejectReason = 'invalid_schema' | 'event_too_large' | 'invalid_event_time';
export type DropReason = 'duplicate_message_id' | 'bot';
export const DROP_REASONS: readonly DropReason[] = ['duplicate_message_id', 'bot'];
export type RetryReason = 'salt_unavailable' | 'in_flight' | 'dedup_unavailable';

export const ok = <T>(value: T): Ok<T> => ({ kind: 'ok', value });
export const reject = (reason: RejectReason, errors: FieldError[]): Reject => ({ kind: 'reject', reason, errors });
export const drop = (reason: DropReason): Drop => ({ kind: 'drop', reason });
export const retry = (reason: RetryReason, message: string): Retry => ({ kind: 'retry', reason, message });
