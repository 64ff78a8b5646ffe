/**
 * TypeScript shapes of the inbound events, kept in step with `schemas/events/*.schema.json`
 * (the schemas are the source of truth; these types only describe what a value that passed
 * the generated validator looks like).
 */

/** Segment allows string or number user ids. */
export type UserIdentifier = string | number;

export interface EventPage {
  path?: string;
  url?: string;
  referrer?: string;
  search?: string;
  title?: string;
  [key: string]: unknown;
}

export interface EventContext {
  ip?: string;
  userAgent?: string;
  page?: EventPage;
  locale?: string;
  timezone?: string;
  library?: { name?: string; version?: string; [key: string]: unknown };
  traits?: Record<string, unknown>;
  [key: string]: unknown;
}

interface EventBase {
  messageId?: string;
  timestamp?: string;
  originalTimestamp?: string;
  sentAt?: string;
  receivedAt?: string;
  userId?: UserIdentifier;
  anonymousId?: UserIdentifier;
  context?: EventContext;
  integrations?: Record<string, unknown>;
  writeKey?: string;
  [key: string]: unknown;
}

export interface TrackEvent extends EventBase {
  type: 'track';
  event: string;
  properties?: Record<string, unknown>;
}

export interface PageEvent extends EventBase {
  type: 'page';
  name?: string;
  category?: string;
  properties?: Record<string, unknown>;
}

export interface ScreenEvent extends EventBase {
  type: 'screen';
  name?: string;
  category?: string;
  properties?: Record<string, unknown>;
}

export interface IdentifyEvent extends EventBase {
  type: 'identify';
  traits?: Record<string, unknown>;
}

export type SegmentEvent = TrackEvent | PageEvent | ScreenEvent | IdentifyEvent;
export type SegmentEventType = SegmentEvent['type'];

export interface BatchBody {
  batch: SegmentEvent[];
  sentAt?: string;
  writeKey?: string;
  context?: EventContext;
  integrations?: Record<string, unknown>;
  [key: string]: unknown;
}
