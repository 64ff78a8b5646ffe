import type { FieldError } from './validators.ts';

/**
 * One rejected event as it travels on topic `rejected` (docs/CONTRACTS.md): what an edge sends and
 * the gateway stores. `event` is a redacted copy: no raw user id, trait, IP, URL query or
 * free-text value (`redactRejectedRecord`, shared/privacy/redact.ts).
 */
export interface RejectedRecord {
  site: string;
  /** ISO 8601 (UTC) time the edge received the request. */
  received_at: string;
  /** Position of the event in its batch (0 for single-event requests). */
  index: number;
  message_id: string | null;
  errors: FieldError[];
  event: unknown;
}
