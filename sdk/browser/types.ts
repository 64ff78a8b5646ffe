/** Free-form event properties or user traits (JSON values). */
export type Properties = Record<string, unknown>;

/** Options of `init()`. Only `writeKey` is required. */
export interface TributaryOptions {
  /** The source's write key (sent in the body, so no CORS preflight is needed). */
  writeKey: string;
  /** Base URL of the edge, e.g. `https://collect.example.com`. Default: this page's origin. */
  endpoint?: string;
  /** Send as soon as this many events are queued. Default 20. */
  flushAt?: number;
  /** Send queued events at most this long after the first was queued. Default 10 000 ms. */
  flushIntervalMs?: number;
  /** Collect nothing when the browser sends Do-Not-Track or Global Privacy Control. Default false. */
  respectDoNotTrack?: boolean;
  /** Whether the visitor has consented; `false` collects and stores nothing. Default true. */
  consent?: boolean;
  /** Most events kept in the durable queue; the oldest are dropped beyond it. Default 500. */
  maxQueueEvents?: number;
  /** Most JSON characters kept in the durable queue; the oldest are dropped beyond it. Default 262 144 (256 KiB). */
  maxQueueBytes?: number;
}

export type Settings = Required<TributaryOptions>;

/** A Segment-spec event as the SDK sends it. */
export interface SdkEvent {
  type: 'track' | 'page' | 'identify';
  messageId: string;
  timestamp: string;
  anonymousId: string;
  userId?: string;
  event?: string;
  name?: string;
  properties?: Properties;
  traits?: Properties;
  context: {
    page: PageContext;
    userAgent: string;
    library: { name: string; version: string };
  };
}

export interface PageContext {
  path: string;
  url: string;
  referrer: string;
  search: string;
  title: string;
}
